"""Prestarted workers: per runtime, a process that has imported the runtime once and forks a
fresh child for each of its cells.

A cell's fresh worker spent its first second or two importing before it measured anything
(cells.measure_phases: start and setup): torch ~1.2 s and ~1 s more behind torch.export.load
(and torchao's int8 lowering passes, 2-4 s, in every int8 torch cell), OpenVINO, ONNX Runtime
or LiteRT 0.2-0.4 s each, and the harness's own probes. The child forked from this process
starts with those imports done and is otherwise the worker of agents/launcher.py: its own
process and session (process group), its own log, the cell's environment, and the same
`agents.worker` main; a crash or a hang costs that child, never this process or the next
cell. Each runtime has its own server, so a cell's memory figures hold its own runtime's
imports only, as a fresh worker's did.

Protocol, one JSON object per line: the launcher writes {"cell", "out", "log", "env"} to
stdin; this process answers {"pid"} once the child runs and {"pid", "code"} when it has
exited (code as subprocess reports it: negative for a signal). It exits when stdin closes or
its launcher dies (the child it is waiting for is then killed with its process group).

    python -m agents.zygote RUNTIME   # started by agents.launcher, with the worker's environment

A fork copies only the calling thread, so nothing is preloaded that a child needs a thread
of. One import starts a thread: OpenVINO's (openvino_telemetry's sender pool, which a
worker never sends through). TensorRT is not forked: its import loads CUDA's libraries,
and a CUDA context must never cross a fork; its cells start plain workers."""

from __future__ import annotations

import importlib
import json
import os
import select
import signal
import subprocess
import sys
import time

# what every cell imports before its timed loops
COMMON_PRELOAD = ("numpy", "agents.worker", "agents.evalpack", "agents.devices",
                  "agents.probes.memory", "agents.probes.quality", "agents.probes.latency",
                  "agents.probes.stats", "agents.probes.energy", "agents.probes.profile")
# per runtime: its session and profiler modules (which import the runtime), and what its
# load imports later; OPTIONAL: imported where installed (torchao registers the int8
# lowering passes an int8 torch program is compiled with)
PRELOAD = {
    "torch": ("torch", "torch.export", "torch._export.serde.serialize",
              "agents.runtimes.torch_rt", "agents.runtimes.torch_profile"),
    "onnxruntime": ("agents.runtimes.onnxruntime_rt", "agents.runtimes.onnxruntime_profile"),
    "openvino": ("agents.runtimes.openvino_rt", "agents.runtimes.openvino_profile"),
    "litert": ("agents.runtimes.litert_rt",),
}
OPTIONAL_PRELOAD = {"torch": ("torchao.quantization.pt2e.quantizer.x86_inductor_quantizer",)}
PARENT_ENV = "HARNESS_PARENT_PID"   # as agents.worker reads it: the process to outlive
WAIT_SLICE_S = 0.05
READY_TIMEOUT_S = 120.0   # the preload; past it the launcher starts a plain worker instead


def _reply(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def _child(request: dict) -> None:
    """In the forked child: become the cell's worker process, then exit with its code."""
    code = 70
    try:
        os.setsid()  # its own process group: the launcher's kill reaches all it starts
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        os.environ.clear()
        os.environ.update(request["env"] | {PARENT_ENV: str(os.getppid())})
        from agents.worker import main
        code = main([request["cell"], "--out", request["out"]])
    except BaseException:  # noqa: BLE001 - reported through the log and the exit code
        import traceback
        traceback.print_exc()
    finally:
        from agents.worker import exit_now
        exit_now(code)


def _wait(pid: int, launcher: int) -> int:
    """The child's exit code; if the launcher dies meanwhile, kill the child's group."""
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if os.getppid() != launcher:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(pid, 0)
            os._exit(0)
        time.sleep(WAIT_SLICE_S)


def preload(runtime: str) -> None:
    for module in (*COMMON_PRELOAD, *PRELOAD[runtime]):
        importlib.import_module(module)
    for module in OPTIONAL_PRELOAD.get(runtime, ()):
        try:
            importlib.import_module(module)
        except ImportError:
            pass  # not installed: the cell that needs it says so itself


def serve(runtime: str) -> int:
    launcher = os.getppid()
    preload(runtime)
    _reply({"ready": os.getpid()})
    for line in sys.stdin:
        request = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _child(request)
        _reply({"pid": pid})
        _reply({"pid": pid, "code": _wait(pid, launcher)})
    return 0


class ZygoteError(RuntimeError):
    """The prestarted worker did not start or answer: the launcher starts a plain one."""


class Zygote:
    """The launcher's side: start a runtime's server with the workers' environment, then
    fork a worker per cell (`start`), watched like a subprocess.Popen (`ForkedWorker`)."""

    def __init__(self, env: dict, runtime: str):
        if runtime not in PRELOAD:
            raise ZygoteError(f"no prestarted worker for runtime {runtime!r}")
        self.env, self.runtime = env, runtime
        self.proc = subprocess.Popen([sys.executable, "-m", "agents.zygote", runtime], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        self._buffer = b""
        ready = self.read(READY_TIMEOUT_S)
        if not ready or "ready" not in ready:
            self.close()
            raise ZygoteError(f"the prestarted {runtime} worker did not start "
                              f"(exit code {self.proc.poll()})")

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def read(self, timeout: float | None) -> dict | None:
        """The next message; None if none came within `timeout` or the server is gone."""
        deadline = None if timeout is None else time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buffer:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, 4096)
            if not chunk:
                return None  # the server exited
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    def start(self, cell_file: str, out_file: str, log_file: str, env: dict) -> "ForkedWorker":
        request = {"cell": cell_file, "out": out_file, "log": log_file, "env": env}
        try:
            self.proc.stdin.write((json.dumps(request) + "\n").encode())
            self.proc.stdin.flush()
        except OSError as exc:
            raise ZygoteError(f"the prestarted {self.runtime} worker is gone: {exc}") from None
        started = self.read(READY_TIMEOUT_S)
        if not started or "pid" not in started:
            self.close()
            raise ZygoteError(f"the prestarted {self.runtime} worker did not fork a worker")
        return ForkedWorker(self, started["pid"])

    def close(self) -> None:
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


class ForkedWorker:
    """A forked worker, as agents.launcher watches a subprocess: pid (its process group's
    id too), poll() and wait() giving the exit code, negative for a signal."""

    def __init__(self, zygote: Zygote, pid: int):
        self.zygote, self.pid = zygote, pid
        self.returncode: int | None = None

    def _answer(self, timeout: float | None) -> int | None:
        if self.returncode is not None:
            return self.returncode
        message = self.zygote.read(timeout)
        if message is None and not self.zygote.alive:
            # the server died under it: nobody can report the child's exit any more
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.returncode = -signal.SIGKILL
        elif message is not None:
            self.returncode = message["code"]
        return self.returncode

    def poll(self) -> int | None:
        return self._answer(0)

    def wait(self) -> int:
        while self._answer(1.0) is None:
            pass
        return self.returncode


if __name__ == "__main__":
    sys.exit(serve(sys.argv[1]))
