"""What a sweep sets up for the processes it starts (the embedded node inherits it)."""

import os

from harness.cluster.tasks import COMPILE_CACHE_ENV
from harness.sweep import compile_cache_here


def test_torch_compile_caches_live_under_the_artifact_cache(tmp_path, monkeypatch):
    monkeypatch.delenv(COMPILE_CACHE_ENV, raising=False)
    compile_cache_here(tmp_path / "cache")
    assert os.environ[COMPILE_CACHE_ENV] == str((tmp_path / "cache" / "inductor").resolve())


def test_a_users_own_compile_cache_setting_wins(tmp_path, monkeypatch):
    monkeypatch.setenv(COMPILE_CACHE_ENV, "/srv/inductor")
    compile_cache_here(tmp_path / "cache")
    assert os.environ[COMPILE_CACHE_ENV] == "/srv/inductor"


class _Store:
    """What the recorder writes to, kept in memory."""

    def __init__(self):
        self.cells = []

    def write_device(self, *args, **kwargs):
        pass

    def write_cell(self, run_id, cell, **fields):
        self.cells.append((cell.cell_id, fields))


def _recorder(monkeypatch):
    from io import StringIO

    from rich.console import Console
    from rich.progress import Progress, TextColumn

    from harness import sweep

    out = StringIO()
    console = Console(file=out, force_terminal=False, width=300)  # a CI log, not a terminal
    progress = Progress(TextColumn("{task.description}"), console=console)
    task = progress.add_task("starting", total=2, current="Ray")
    monkeypatch.setattr(sweep, "PROGRESS_LINE_EVERY_S", 0.0)  # a progress line every cell
    return sweep._Recorder(_Store(), "r1", progress, task), out


def _outcome(cell_id: str, p50s: dict, top1: float, *, cached: bool, wall_s: float):
    from agents.cell import CellResult
    from harness.cluster.coordinator import CellOutcome
    from harness.matrix.expand import Cell

    rows = [{"batch_size": b, "latency_p50_ms": p50, "shape": "", "metrics": {"top1": top1}}
            for b, p50 in p50s.items()]
    return CellOutcome(Cell(*cell_id.split("/")), "ok",
                       variant={"cached": cached, "task": "classification",
                                "eval_pack": {"labelled": True, "reference_top1": 0.99}},
                       result=CellResult(status="ok", measurements=rows, wall_s=wall_s),
                       build_wall_s=0.1 if cached else 12.4)


def test_a_log_gets_one_plain_line_per_cell_and_progress_naming_the_work(monkeypatch):
    recorder, out = _recorder(monkeypatch)
    recorder.on_phase("measuring", "m/int8/onnx/intel-cpu, m/int8/onnx/arm-edge")
    recorder.on_cell(_outcome("m/int8/onnx/intel-cpu", {1: 0.3204, 8: 2.405}, 0.9889,
                              cached=False, wall_s=2.2))
    recorder.on_phase("measuring", "m/fp32/onnx/intel-cpu")
    recorder.on_cell(_outcome("m/fp32/onnx/intel-cpu", {1: 0.813}, 0.9889, cached=True,
                              wall_s=1.6))
    lines = out.getvalue().splitlines()
    assert lines[0] == ("ok      m/int8/onnx/intel-cpu  b1 0.320 ms, b8 2.405 ms p50; "
                        "top1 0.9889; build 12 s, measure 2 s")
    # still measuring the variant's other cell: the line says which
    assert lines[1].startswith("progress 1/2 cells") and lines[1].endswith(
        "; measuring m/int8/onnx/intel-cpu, m/int8/onnx/arm-edge")
    assert lines[2].endswith("top1 0.9889; cached, measure 2 s")
    # the cell it named is done: the line names nothing rather than a finished cell
    assert lines[3].startswith("progress 2/2 cells") and "measuring" not in lines[3]
    assert "\x1b" not in out.getvalue()  # no control characters in a log
    assert [c for c, _ in recorder.store.cells] == ["m/int8/onnx/intel-cpu",
                                                    "m/fp32/onnx/intel-cpu"]
