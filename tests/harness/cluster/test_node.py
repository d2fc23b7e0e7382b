"""What an agent advertises: Ray resources and labels that Ray accepts."""

from ray._private.label_utils import validate_node_label_syntax

from harness.cluster.node import label_value, node_spec

REPORT = {"host": "jetson (lab) #2", "hardware_kinds": ["intel-cpu"],
          "cpu_model": "Intel(R) Xeon(R) Platinum 8480+ @ 2.00GHz",
          "gpus": [{"name": "NVIDIA H100 80GB HBM3", "driver": "570.86.15"}],
          "runtimes": {"onnxruntime": {"version": "1.32.0"}, "tensorrt": {"reason": "absent"},
                       "torch": {"version": "2.14.1+cu130"}}}


def test_label_values_are_valid_ray_labels():
    for text in ("Intel(R) Xeon(R) CPU @ 2.20GHz", "-x-", "a" * 100, "NVIDIA H100 80GB HBM3"):
        value = label_value(text)
        validate_node_label_syntax({"harness/x": value})
        assert len(value) <= 63


def test_a_node_advertises_its_devices_slot_and_labels():
    spec = node_spec(REPORT, build=True)
    assert spec.resources == {"device:intel-cpu": 1.0, "host_slot": 1.0, "build": 1.0}
    validate_node_label_syntax(spec.labels)
    assert spec.labels["harness/emulated"] == "false"
    assert spec.labels["harness/gpu-name"] == "NVIDIA-H100-80GB-HBM3"
    assert spec.labels["harness/rt-torch"] == "2.14.1"
    assert "harness/rt-tensorrt" not in spec.labels  # only runtimes that import


def test_as_kind_replaces_detection_and_is_emulated():
    spec = node_spec(REPORT, as_kind="arm-edge", name="arm-1")
    assert spec.resources == {"device:arm-edge": 1.0, "host_slot": 1.0}
    assert spec.emulated and spec.labels["harness/emulated"] == "true"
    assert spec.labels["harness/host"] == "arm-1"
    assert not node_spec(REPORT, as_kind="intel-cpu").emulated  # the host has it
