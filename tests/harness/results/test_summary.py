"""The sweep's closing summary: the best-variant table fits an 80-column terminal without
cutting words, and cells that did not run are grouped by their cause."""

from rich.console import Console

from harness.matrix.expand import Cell
from harness.results.store import Store
from harness.results.summary import print_summary
from tests.harness.results.test_report import manifest, measurement

GPU_REASON = "no agent advertises 'device:nvidia-gpu': join a node with that device"


def test_the_table_fits_80_columns_and_cells_that_did_not_run_are_grouped(tmp_path):
    store = Store(tmp_path / "r.duckdb")
    store.start_run({"run_id": "r1", "matrix_name": "t"})
    store.write_variant(manifest("v1", "fp32", "onnx", [{"kind": "baseline"}]))
    store.write_variant(manifest("v2", "slim30-int8", "openvino",
                                 [{"kind": "prune"}, {"kind": "quantize"}], precision="int8",
                                 parity={"ok": False, "suspect": True}))
    name = "mobilenet_v3_small"
    for method, variant, p50, quality in (("fp32", "v1", 2.0, 0.98),
                                          ("slim30-int8", "v2", 0.5, 0.975)):
        fmt = "onnx" if variant == "v1" else "openvino"
        store.write_cell("r1", Cell(name, method, fmt, "intel-cpu"), status="ok",
                         variant_id=variant,
                         measurements=[measurement(1, p50, quality, labelled=False)
                                       | {"shape": "seq=128",
                                          "precision": "fp32" if variant == "v1" else "int8"}])
    for method in ("fp32", "fp16", "bf16"):
        store.write_cell("r1", Cell(name, method, "torch", "nvidia-gpu"),
                         status="unavailable", error=GPU_REASON)
    console = Console(width=80, record=True)
    print_summary(store.con, "r1", console)
    text = console.export_text()
    table = text.split("cell(s) did not run")[0]
    assert all(len(line) <= 80 for line in table.splitlines()), table
    assert "…" not in table
    words = " ".join(table.split())
    assert "device intel-cpu, batch 1" in words  # the same on every row: said once in the title
    assert "slim30-int8" in table and "openvino" in table and "int8 !" in table
    assert "mobilenet_v3" in table and "seq=128" in table
    assert "prec !: parity suspect" in table
    grouped = [line for line in text.splitlines() if "nvidia-gpu" in line]
    assert len(grouped) == 1 and "unavailable 3 cells (" in grouped[0], grouped
    store.close()


def test_a_labelled_quality_shows_its_change_against_fp32_with_its_sign(tmp_path):
    """The table has no 'drop' heading: 98.50% beside 98% reads '+0.50', a loss
    '-0.50', never a loss with a plus sign."""
    store = Store(tmp_path / "r.duckdb")
    store.start_run({"run_id": "r1", "matrix_name": "t"})
    store.write_variant(manifest("v1", "fp32", "onnx", [{"kind": "baseline"}]))
    store.write_variant(manifest("v2", "int8", "onnx", [{"kind": "quantize"}],
                                 precision="int8"))
    for method, variant, p50, top1 in (("fp32", "v1", 2.0, 0.98), ("int8", "v2", 0.5, 0.975)):
        store.write_cell("r1", Cell("digits", method, "onnx", "intel-cpu"), status="ok",
                         variant_id=variant, measurements=[measurement(1, p50, top1)])
    console = Console(width=80, record=True)
    print_summary(store.con, "r1", console)
    text = console.export_text()
    assert "97.50% top1 (-0.50)" in text, text
    store.close()
