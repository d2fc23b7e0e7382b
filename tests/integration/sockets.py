"""Where Ray processes listen: tests and checks here may send traffic only to loopback."""

import ipaddress
import time

import psutil


def is_loopback(ip: str) -> bool:
    addr = ipaddress.ip_address(ip)
    mapped = getattr(addr, "ipv4_mapped", None)  # ::ffff:127.0.0.1 on dual-stack sockets
    return addr.is_loopback or bool(mapped and mapped.is_loopback)


def process_tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def listening(pids: set[int]) -> set[tuple[str, int, str]]:
    """(ip, port, process name) of every listening TCP socket of these processes."""
    found = set()
    for conn in psutil.net_connections("tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.pid in pids:
            try:
                name = psutil.Process(conn.pid).name()
            except psutil.NoSuchProcess:
                continue
            found.add((conn.laddr.ip, conn.laddr.port, name))
    return found


def listening_once_up(pid: int, wait_s: float = 60) -> set[tuple[str, int, str]]:
    """The listening sockets of a process tree, once its raylet is up."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        procs = process_tree(pid)
        if not procs:
            return set()
        if any("raylet" in (p.name() or "") for p in procs if p.is_running()):
            time.sleep(2)  # let every server bind
            return listening({p.pid for p in process_tree(pid)})
        time.sleep(0.5)
    return set()


def not_on_loopback(found: set[tuple[str, int, str]]) -> list:
    return sorted(s for s in found if not is_loopback(s[0]))
