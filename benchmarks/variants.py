"""The variants the cross-check scripts measure: the digits CNN (and, on request, a
random-init resnet18 and the tiny BERT classifier at one sequence length) as fp32, dynamic
int8 and static int8 in one format, built or reused through the harness's own build
cache."""

from __future__ import annotations

import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


ENCODER_SEQ = 128  # the sequence length the encoder's variants are built and timed at


def check_models(resnet18: bool, encoder: bool = False) -> list[tuple]:
    """(ModelSpec, shapes) for each model a check measures."""
    from harness.matrix.schema import ModelSpec

    models = [(ModelSpec(name="digits-cnn", source="builtin:digits_cnn", dataset="digits"),
               ({},))]
    if resnet18:
        models.append((ModelSpec(name="resnet18", source="torchvision:resnet18", weights=None,
                                 input_shape=[3, 224, 224], dataset="synthetic"), ({},)))
    if encoder:
        from examples.make_models import make_tiny_bert

        # the BERT classifier edge.yaml measures (made as `make models` makes it), two
        # int64 inputs [batch, seq]
        make_tiny_bert(REPO / "matrix" / "models" / "tiny-bert")
        models.append((ModelSpec(name="tiny-bert", source="hf:matrix/models/tiny-bert",
                                 task="classification"), ({"seq": ENCODER_SEQ},)))
    return models


def build_check_variants(fmt: str, cache: str | Path, resnet18: bool,
                         encoder: bool = False) -> list[tuple[str, dict]]:
    from harness.build.variant import VariantRequest, build_variant
    from harness.matrix.schema import BaselineMethod, QuantizeMethod

    methods = [BaselineMethod(name="fp32", kind="baseline"),
               QuantizeMethod(name="int8-dyn", kind="quantize", mode="dynamic"),
               QuantizeMethod(name="int8", kind="quantize", mode="static")]
    built = []
    for model, shapes in check_models(resnet18, encoder):
        for method in methods:
            started = time.perf_counter()
            manifest = build_variant(VariantRequest(model=model, method=method.name,
                                                    steps=(method,), format=fmt,
                                                    base_dir=str(REPO), cache_dir=str(cache),
                                                    shapes=shapes))
            how = ("cached" if manifest["cached"]
                   else f"built in {time.perf_counter() - started:.0f} s")
            print(f"{model.name}/{method.name}: {how}, {manifest['size_bytes'] / 1e6:.2f} MB, "
                  f"parity ok={manifest['parity']['ok']}", flush=True)
            built.append((f"{model.name}/{method.name}", manifest))
    return built


def timing_cell(manifest: dict, cell_id: str, threads: int, seconds: float,
                device: str = "intel-cpu"):
    """A worker cell that times batch 1 for exactly `seconds`: min = max seconds and a CI
    target it cannot reach, so the window matches the reference tool's (benchmark_app -t, a
    bare loop of the same length). No accuracy pass: only latency is compared."""
    from agents.cell import CellPayload

    measure = {"batch_sizes": [1], "threads": threads, "warmup_s": 1.0, "min_iterations": 50,
               "min_seconds": seconds, "max_seconds": seconds, "ci_rel_width": 1e-9,
               "accuracy": False, "timeout_s": 600}
    return CellPayload.from_manifest(cell_id, device, manifest, measure)


def first_batch(manifest: dict) -> dict:
    """The batch of one sample the harness times first (named inputs)."""
    from agents.evalpack import EvalPack
    return EvalPack(manifest["eval_pack"]["path"]).batch(0, 1)
