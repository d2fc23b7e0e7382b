"""A failed build's stored error leads with its cause, not with a line of the traceback."""

from harness.cluster.coordinator import _ray_error_text

REMOTE = """ray::build_task() (pid=28871, ip=127.0.0.1)
  File "/work/main/harness/cluster/tasks.py", line 36, in build_task
    manifest = build_variant(request)
  File "/work/main/agents/runtimes/openvino_rt.py", line 117, in run
    self._request.set_tensor(name, ov.Tensor(array, shared_memory=True))
RuntimeError: Exception from src/inference/src/cpp/infer_request.cpp:75:
Check 'shape.compatible(...)' failed at src/plugins/intel_cpu/src/infer_request.cpp:385:
Can't set the input tensor with index: 1, because the model input (shape=[]) and the tensor (shape=(1)) are incompatible
"""


def test_the_cause_comes_first_then_the_traceback():
    text = _ray_error_text(RuntimeError(REMOTE))
    first, rest = text.split("\n", 1)
    assert first.startswith("RuntimeError: Exception from") and first.endswith("are incompatible")
    assert 'File "/work/main/agents/runtimes/openvino_rt.py"' in rest


def test_a_one_line_error_is_kept_as_it_is():
    assert _ray_error_text(ValueError("ValueError: bad")) == "ValueError: bad"
    assert _ray_error_text(OSError("")) == "OSError"
