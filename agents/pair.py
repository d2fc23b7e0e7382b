"""Measure two artifacts of one cell in one process, alternating short blocks: A B, B A, ...

    python -m agents.pair pair.json --out result.json

What `harness compare --confirm` runs. On a shared host the speed drifts by tens of percent
within seconds to minutes (seen on a 2-core VM: a torch model's 1 s block medians moved
between 1.8 and 3.1 ms inside one process). Two separate measurements, even back to back,
carry that drift into their ratio; blocks of a fraction of a second, alternated, see the
same conditions, so the median of the per-block ratios is the artifacts' difference.
No Ray, no DuckDB: like agents.worker.
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np

from agents.cell import CellPayload
from agents.worker import exit_now, normal_priority, open_for, run_and_report, verified


def _open(cell: CellPayload, batch_size: int):
    """The timed call for one side at `batch_size`."""
    from agents.evalpack import EvalPack

    artifact = verified(cell.artifact, "artifact")
    pack = EvalPack(verified(cell.eval_pack, "eval pack"))
    session = open_for(cell, artifact)
    # the shape of the finding (measure["shape"], e.g. "seq=128"); the first otherwise
    labels = [pack.shape_label(j) for j in range(len(pack.shapes))]
    j = labels.index(cell.measure["shape"]) if cell.measure.get("shape") in labels else 0
    return session.timed_call(pack.batch(j, batch_size)), session.runtime_clock


def measure_pair(payload: dict) -> dict:
    from agents.probes.latency import time_calls

    cells = [CellPayload.from_json(c) for c in payload["pair"]]
    measure = cells[0].measure
    batch_size = measure["batch_sizes"][0]
    niceness = normal_priority()
    sides = [_open(cell, batch_size) for cell in cells]

    def block(side: int, seconds: float) -> np.ndarray:
        call, clock = sides[side]
        # exactly `seconds` of timed calls (at least one): no stopping rule inside a block
        return time_calls(call, warmup_s=0.0, min_iterations=1, min_seconds=seconds,
                          max_seconds=seconds, ci_rel_width=1e-12,
                          runtime_clock=clock).samples_ms

    for side in (0, 1):
        block(side, measure["warmup_s"])
    medians: list[list[float]] = [[], []]
    for b in range(payload["blocks"]):
        for side in ((0, 1) if b % 2 == 0 else (1, 0)):
            medians[side].append(float(np.median(block(side, payload["block_s"]))))
    ratios = [c / a for a, c in zip(*medians)]
    return {"status": "ok", "ratio": statistics.median(ratios), "ratios": ratios,
            "p50s_ms": [statistics.median(m) for m in medians], "niceness": niceness}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agents.pair")
    parser.add_argument("payload", help="{pair: [cell A, cell B], measure, blocks, block_s}")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    return run_and_report(measure_pair, args.payload, args.out)


if __name__ == "__main__":
    exit_now(main())
