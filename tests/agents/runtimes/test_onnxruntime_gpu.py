"""ONNX Runtime on nvidia-gpu: which providers a session asks for, that a session which fell
back to the CPU is refused (never stored as a GPU measurement), and, on a machine with
onnxruntime-gpu and a CUDA device, a real session (skipped elsewhere with the reason)."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from agents.runtimes import onnxruntime_gpu_rt as gpu
from agents.runtimes.onnxruntime_rt import open_session

CPU_ONLY = ["AzureExecutionProvider", "CPUExecutionProvider"]
GPU_BUILD = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]


def _matmul_model(path) -> str:
    """y = x @ W + b with a dynamic batch: a real graph with a GEMM-class node."""
    rng = np.random.default_rng(0)
    weight = helper.make_tensor("W", TensorProto.FLOAT, [16, 4],
                                rng.standard_normal(64).astype(np.float32))
    bias = helper.make_tensor("b", TensorProto.FLOAT, [4], np.arange(4, dtype=np.float32))
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["xw"]), helper.make_node("Add", ["xw", "b"],
                                                                          ["y"])],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])], [weight, bias])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path))
    return str(path)


def test_a_cpu_build_has_no_gpu_session_and_says_which_package_to_install():
    with pytest.raises(RuntimeError, match="install onnxruntime-gpu instead of onnxruntime"):
        gpu.providers_for(CPU_ONLY, None)


def test_tensorrt_first_only_where_its_libraries_load():
    chosen, notes = gpu.providers_for(GPU_BUILD, None)
    assert [p[0] if isinstance(p, tuple) else p for p in chosen] == GPU_BUILD
    chosen, notes = gpu.providers_for(GPU_BUILD, "TensorRT does not import (ImportError)")
    assert [p[0] if isinstance(p, tuple) else p for p in chosen] == GPU_BUILD[1:]
    assert "TensorrtExecutionProvider left out: TensorRT does not import" in notes[0]


def test_a_session_that_fell_back_to_the_cpu_is_refused():
    asked, _ = gpu.providers_for(GPU_BUILD[1:], None)
    assert gpu.gpu_provider_or_raise(asked, GPU_BUILD[1:]) == "CUDAExecutionProvider"
    with pytest.raises(RuntimeError, match="fell back to the CPU"):
        gpu.gpu_provider_or_raise(asked, ["CPUExecutionProvider"])


def test_int8_and_bf16_are_not_gpu_precisions_here():
    with pytest.raises(ValueError, match="fp32 or fp16"):
        gpu.OrtGpuSession("unused.onnx", 1, "int8")


_NO_GPU = None if "CUDAExecutionProvider" in ort.get_available_providers() else (
    gpu.gpu_status()["reason"])


@pytest.mark.skipif(_NO_GPU is None, reason="this onnxruntime has a GPU provider")
def test_this_cpu_build_refuses_a_gpu_cell_with_the_reason(tmp_path):
    with pytest.raises(RuntimeError, match="has no CUDA execution provider"):
        open_session(_matmul_model(tmp_path / "m.onnx"), threads=1, device="nvidia-gpu",
                     precision="fp32")


@pytest.mark.skipif(_NO_GPU is not None, reason=f"{_NO_GPU}")
def test_a_gpu_session_runs_on_the_gpu_and_matches_the_cpu(tmp_path):
    path = _matmul_model(tmp_path / "m.onnx")
    session = open_session(path, threads=1, device="nvidia-gpu", precision="fp32")
    assert session.info["execution_provider"] in gpu.GPU_PROVIDERS
    x = np.random.default_rng(1).standard_normal((8, 16)).astype(np.float32)
    cpu = open_session(path, threads=1, device="intel-cpu", precision="fp32")
    np.testing.assert_allclose(session.run({"x": x})[0], cpu.run({"x": x})[0], rtol=1e-3,
                               atol=1e-4)
    call = session.timed_call({"x": x})
    call()  # I/O-bound inputs on the device
    assert session.device_memory()["device_mem_nvml_mb"] is None or (
        session.device_memory()["device_mem_nvml_mb"] > 0)
