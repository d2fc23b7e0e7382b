"""A node or a cluster on loopback stays there: the launcher that keeps 127.0.0.1, and the
plain `ray start` for every other address."""

import sys

import pytest

from harness.cluster.loopback import address_host, is_loopback
from harness.cluster.node import node_spec, ray_start_command
from tests.harness.cluster.test_node import REPORT

LAUNCHER = [sys.executable, "-m", "harness.cluster.ray_start_loopback"]


@pytest.mark.parametrize("host,expected", [
    ("127.0.0.1", True), ("127.0.0.2", True), ("localhost", True), ("::1", True),
    ("[::1]", True), ("10.0.0.5", False), ("192.0.2.2", False), ("head.lab", False),
    (None, False), ("", False)])
def test_is_loopback(host, expected):
    assert is_loopback(host) is expected


def test_address_host():
    assert address_host("127.0.0.1:6379") == "127.0.0.1"
    assert address_host("[::1]:6379") == "::1"
    assert address_host("head.lab:6379") == "head.lab"
    assert address_host(None) is None and address_host("nohost") is None


def _command(**kw):
    spec = node_spec(REPORT, as_kind="arm-edge")
    return ray_start_command(spec, port=6379, num_cpus=None, **kw)


def test_joining_a_loopback_head_runs_the_launcher_and_advertises_loopback():
    cmd = _command(address="127.0.0.1:6379", head=False, node_ip=None)
    assert cmd[:3] == LAUNCHER and cmd[3] == "start"
    assert cmd[cmd.index("--node-ip-address") + 1] == "127.0.0.1"


def test_a_head_on_loopback_runs_the_launcher():
    cmd = _command(address=None, head=True, node_ip="127.0.0.1")
    assert cmd[:3] == LAUNCHER and "--head" in cmd


def test_a_real_cluster_binds_where_the_user_says():
    cmd = _command(address="10.0.0.5:6379", head=False, node_ip=None)
    assert cmd[0].endswith("ray") and "--node-ip-address" not in cmd
    cmd = _command(address=None, head=True, node_ip="10.0.0.5")
    assert cmd[0].endswith("ray") and cmd[cmd.index("--node-ip-address") + 1] == "10.0.0.5"
