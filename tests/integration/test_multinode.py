"""Several Ray nodes on one machine (ray.cluster_utils.Cluster), each advertising what
`harness agent start` would: a build node, an intel-cpu agent, an emulated arm-edge agent.
`harness sweep --address` runs against them as a user would, in its own process. Every node
binds and advertises 127.0.0.1, and the tests check that no Ray process listens elsewhere.

Faults are real: a SIGSEGV, a hang and a memory blow-up injected into one worker each
(HARNESS_INJECT_FAULT, set on that agent only), and agents killed mid-measure."""

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from tests.conftest import REPO, run_cli
from harness.cluster.loopback import LOOPBACK_IP, keep_on_loopback
from tests.integration.conftest import query
from tests.integration.sockets import listening, not_on_loopback, process_tree

pytestmark = pytest.mark.integration

MEASURE = ("measure: {batch_sizes: [1], threads: 1, min_iterations: 10, min_seconds: 0.1, "
           "max_seconds: 0.5, warmup_s: 0.05, timeout_s: %d, memory_limit_mb: 1500}\n")


def _token_auth_on():
    """Keep Ray's token authentication on for the test cluster, as for a real one."""
    from pathlib import Path

    from ray._private.authentication.authentication_token_setup import (
        _enable_token_auth, generate_and_save_token)

    token = Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")
    if not os.environ.get("RAY_AUTH_TOKEN") and not token.is_file():
        generate_and_save_token()
    _enable_token_auth()


@pytest.fixture(scope="module")
def report():
    from agents.devices import host_report
    return host_report()


class Agents:
    """A Cluster whose nodes advertise exactly what `harness agent start` computes."""

    def __init__(self, report):
        from ray.cluster_utils import Cluster

        from harness.cluster.node import node_spec

        _token_auth_on()
        os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
        keep_on_loopback()  # the nodes' processes and the sweep's driver inherit it
        self._spec = lambda **kw: node_spec(report, **kw)
        head = node_spec(report, as_kind=None, build=True, name="build-node")
        head.resources = {k: v for k, v in head.resources.items()
                          if not k.startswith("device:")}  # a build node only
        self.cluster = Cluster(initialize_head=True, head_node_args={
            "num_cpus": 1, "resources": head.resources, "labels": head.labels,
            "include_dashboard": False, "node_ip_address": LOOPBACK_IP})
        self.nodes = {}

    @property
    def address(self) -> str:
        return self.cluster.address

    def add(self, name: str, kind: str, faults: dict | None = None):
        spec = self._spec(as_kind=kind, name=name)
        env = {"HARNESS_EMULATED_KIND": kind} if spec.emulated else {}
        if faults:
            env["HARNESS_INJECT_FAULT"] = json.dumps(faults)
        self.nodes[name] = self.cluster.add_node(
            num_cpus=1, resources=spec.resources, labels=spec.labels, env_vars=env or None,
            node_ip_address=LOOPBACK_IP)
        return self.nodes[name]

    def listening(self) -> set:
        """Listening sockets of every process the cluster started (this process's tree)."""
        return listening({p.pid for p in process_tree(os.getpid())})

    def raylet_pid(self, name: str) -> int:
        return self.nodes[name].all_processes["raylet"][0].process.pid

    def remove(self, name: str) -> None:
        self.cluster.remove_node(self.nodes.pop(name), allow_graceful=False)

    def shutdown(self) -> None:
        self.cluster.shutdown()


@pytest.fixture
def agents(report):
    cluster = Agents(report)
    yield cluster
    cluster.shutdown()


def _matrix(tmp_path, methods: str, formats: str, devices: str, timeout_s: int) -> str:
    path = tmp_path / "multinode.yaml"
    path.write_text(f"name: multinode\n"
                    f"models: [{{name: digits-cnn, source: 'builtin:digits_cnn', "
                    f"dataset: digits}}]\nmethods: {methods}\nformats: {formats}\n"
                    f"devices: {devices}\n" + MEASURE % timeout_s)
    return str(path)


def _cells(db):
    return {r["cell_id"]: r for r in query(db, """
        select c.cell_id, c.status, c.error, c.started_at, c.finished_at, d.host, d.kind,
               d.emulated, d.runtimes->>'node_id' as node_id
        from cells c left join devices d using (device_id)""")}


def test_cells_land_on_their_agents_and_faults_cost_one_cell_each(agents, tmp_path,
                                                                   cache_dir):
    intel = agents.add("intel-node", "intel-cpu", faults={
        "digits-cnn/int8-dyn/onnx/intel-cpu": "segfault",
        "digits-cnn/int8/onnx/intel-cpu": "hang",
        "digits-cnn/fp32/torch/intel-cpu": "oom"})
    arm = agents.add("arm-node", "arm-edge")
    matrix = _matrix(tmp_path, "[{name: fp32, kind: baseline}, {name: int8-dyn, kind: "
                     "quantize, mode: dynamic}, {name: int8, kind: quantize, mode: static}]",
                     "[onnx, torch]", "[intel-cpu, arm-edge, nvidia-gpu]", timeout_s=20)
    # Three nodes, each with its GCS / raylet / agents: all on loopback, none elsewhere.
    sockets = agents.listening()
    assert {name for _, _, name in sockets} >= {"gcs_server", "raylet"}, sockets
    assert not not_on_loopback(sockets), not_on_loopback(sockets)
    db = tmp_path / "r.duckdb"
    out = run_cli("sweep", matrix, "--address", agents.address, "--db", str(db), "--cache",
                  str(cache_dir), timeout=600)
    assert out.returncode == 1, out.stdout + out.stderr  # cells failed, stated; no crash
    assert "Traceback" not in out.stderr
    # Ray's own notices stay out of the output unless --verbose (the README explains them)
    assert "Token authentication is enabled" not in out.stdout + out.stderr
    cells = _cells(db)

    # Placement: each measured cell ran on the agent of its device, and says so.
    for cell_id, row in cells.items():
        if row["status"] in ("skipped", "unavailable"):
            continue
        kind = cell_id.rsplit("/", 1)[1]
        node = {"intel-cpu": intel, "arm-edge": arm}[kind]
        assert row["kind"] == kind and row["node_id"] == node.node_id, row
        assert row["host"] == {"intel-cpu": "intel-node", "arm-edge": "arm-node"}[kind]
        assert row["emulated"] == (kind == "arm-edge")
    for method in ("fp32", "int8-dyn", "int8"):
        assert cells[f"digits-cnn/{method}/onnx/arm-edge"]["status"] == "ok"
    assert cells["digits-cnn/fp32/torch/arm-edge"]["status"] == "ok"
    assert cells["digits-cnn/fp32/onnx/intel-cpu"]["status"] == "ok"

    # No agent for the GPU: unavailable at once, before any measurement started.
    gpu = cells["digits-cnn/fp32/torch/nvidia-gpu"]
    assert gpu["status"] == "unavailable" and "device:nvidia-gpu" in gpu["error"]
    first_measured = min(r["started_at"] for r in cells.values() if r["status"] == "ok")
    assert gpu["finished_at"] <= first_measured

    # Each fault cost its own cell only, with the right status and the evidence.
    segv = cells["digits-cnn/int8-dyn/onnx/intel-cpu"]
    assert segv["status"] == "failed" and "SIGSEGV" in segv["error"], segv
    assert "injecting fault 'segfault'" in segv["error"]  # the tail of the worker's log
    hang = cells["digits-cnn/int8/onnx/intel-cpu"]
    assert hang["status"] == "timeout" and "no result after 20 s" in hang["error"], hang
    oom = cells["digits-cnn/fp32/torch/intel-cpu"]
    assert oom["status"] == "failed" and "exceeded the memory limit of 1500 MB" in oom["error"]


# a cell's worker: a plain one, or one forked from its runtime's prestarted server (which
# keeps the server's command line), and that server
WORKER_COMMANDS = ("agents.worker", "agents.zygote")


def _workers_under(raylet_pid: int) -> list[psutil.Process]:
    """Measuring processes started by a Ray worker of the node with this raylet."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        command = " ".join(proc.info["cmdline"] or [])
        if not any(name in command for name in WORKER_COMMANDS):
            continue
        try:
            if any(p.pid == raylet_pid for p in proc.parents()):
                found.append(proc)
        except psutil.NoSuchProcess:
            pass
    return found


def _wait_for_worker(raylet_pid: int, sweep: subprocess.Popen, wait_s: float = 300):
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and sweep.poll() is None:
        workers = _workers_under(raylet_pid)
        if workers:
            return workers
        time.sleep(0.5)
    raise AssertionError("no measuring worker appeared on the agent")


def test_killing_agents_mid_measure_retries_or_fails_and_never_hangs(agents, tmp_path,
                                                                     cache_dir):
    hang = {"digits-cnn/fp32/onnx/intel-cpu": "hang", "digits-cnn/fp32/onnx/arm-edge": "hang"}
    agents.add("intel-a", "intel-cpu", faults=hang)
    agents.add("arm-only", "arm-edge", faults=hang)
    matrix = _matrix(tmp_path, "[{name: fp32, kind: baseline}]", "[onnx]",
                     "[intel-cpu, arm-edge]", timeout_s=300)
    db = tmp_path / "r.duckdb"
    sweep = subprocess.Popen([sys.executable, "-m", "harness.cli", "sweep", matrix, "--address",
                              agents.address, "--db", str(db), "--cache", str(cache_dir)],
                             cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True)
    try:
        stuck = (_wait_for_worker(agents.raylet_pid("intel-a"), sweep)
                 + _wait_for_worker(agents.raylet_pid("arm-only"), sweep))
        agents.add("intel-b", "intel-cpu")  # a second agent of the kind, without the fault
        agents.remove("intel-a")
        agents.remove("arm-only")
        output, _ = sweep.communicate(timeout=300)
    finally:
        if sweep.poll() is None:
            sweep.kill()
    assert sweep.returncode == 1, output
    cells = _cells(db)
    intel = cells["digits-cnn/fp32/onnx/intel-cpu"]
    assert intel["status"] == "ok" and intel["host"] == "intel-b", intel  # retried elsewhere
    assert "attempt 2" in intel["error"]
    arm = cells["digits-cnn/fp32/onnx/arm-edge"]  # its only agent is gone: failed, stated
    assert arm["status"] == "failed", arm
    assert "agent lost" in arm["error"] or "no alive node advertises" in arm["error"], arm
    # The killed agents' workers did not outlive them.
    gone, alive = psutil.wait_procs(stuck, timeout=30)
    assert not alive, [p.pid for p in alive]


def test_agent_start_joins_with_labels_and_stops_on_sigterm(tmp_path):
    from ray.cluster_utils import Cluster

    _token_auth_on()
    keep_on_loopback()
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "resources": {"build": 1}, "include_dashboard": False,
        "node_ip_address": LOOPBACK_IP})
    try:
        agent = subprocess.Popen([sys.executable, "-m", "harness.cli", "agent", "start",
                                  "--address", cluster.address, "--as", "arm-edge", "--name",
                                  "cli-arm", "--num-cpus", "1"], cwd=REPO,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 120
        listed = []
        while time.monotonic() < deadline and agent.poll() is None:
            out = run_cli("agents", "--address", cluster.address, "--json", timeout=120)
            assert out.returncode == 0, out.stderr
            listed = [a for a in json.loads(out.stdout) if a["host"] == "cli-arm"]
            if listed:
                break
            time.sleep(1)
        assert listed, "the agent never showed up in `harness agents`"
        assert listed[0]["address"] == LOOPBACK_IP, listed  # advertised, not rewritten
        agent_sockets = listening({p.pid for p in process_tree(agent.pid)})
        assert any(name == "raylet" for _, _, name in agent_sockets), agent_sockets
        assert not not_on_loopback(agent_sockets), not_on_loopback(agent_sockets)
        assert listed[0]["kinds"] == ["arm-edge"] and listed[0]["emulated"]
        assert listed[0]["runtimes"].get("onnxruntime")
        agent.send_signal(signal.SIGTERM)
        output, _ = agent.communicate(timeout=120)
        assert agent.returncode == 0, output
        assert "agent stopped on SIGTERM" in output
    finally:
        if agent.poll() is None:
            agent.kill()
        cluster.shutdown()


def test_bad_addresses_fail_fast_and_clearly(tmp_path):
    out = run_cli("agents", "--address", "127.0.0.1:1")
    assert out.returncode == 2 and "no Ray cluster answers at 127.0.0.1:1" in out.stderr
    assert "Traceback" not in out.stderr
    out = run_cli("agent", "start", "--address", "nohost")
    assert out.returncode == 2 and "HOST:PORT" in out.stderr
    out = run_cli("agent", "start", "--head", "--as", "tpu")
    assert out.returncode == 2 and "not a device kind" in out.stderr
