"""The Python API on the built-in digits model: prune, quantize, distill, benchmark.

    .venv/bin/python examples/optimize_digits.py
"""

from harness.api import ModelOptimizer, UnavailableError
from harness.data import load_dataset

data = load_dataset("digits", (1, 32, 32))          # labelled: train / calib / test splits
train, test = (data.train_x, data.train_y), (data.test_x, data.test_y)

opt = ModelOptimizer("builtin:digits_cnn", {"cache_dir": "results/cache"})
fp32 = opt.convert_to_onnx()                         # fp32 ONNX, parity-checked
int8 = opt.quantize(method="static", calibration_data=data.calib_x)   # ORT static QDQ

opt.prune(sparsity=0.3, method="channel", train_data=train, finetune_epochs=6)
slim = opt.convert_to_onnx()                         # the pruned model is now current
slim_int8 = opt.quantize(method="static", calibration_data=data.calib_x)  # prune -> int8

try:
    opt.convert_to_tensorrt(fp32)
except UnavailableError as exc:                      # no TensorRT / GPU on this host
    print("tensorrt:", exc)

for row in opt.benchmark(models=[fp32, int8, slim, slim_int8], test_data=test):
    print(f"{row['method']:>8} {row['format']} {row['precision']:>5}  "
          f"p50 {row['latency_p50_ms']:.3f} ms  top-1 {row['accuracy_top1']:.4f}  "
          f"{row['size_bytes'] / 1e3:.0f} KB")
