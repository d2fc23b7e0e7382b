"""`harness compare --confirm`: measure a flagged cell's two artifacts again, side by side.

Two runs of a sweep are minutes or days apart; on a shared host the machine's speed moves
between them by more than a real regression (12-55% seen between two back-to-back nightly
runs on a 2-core VM, while the three processes of one cell inside one run agreed within a
few %). Statistics on the stored samples cannot tell such drift from a change in the
artifact, and neither can two fresh measurements made one after the other: the drift also
moves within seconds. So both artifacts are loaded in one fresh process on this host and
timed in alternating short blocks (agents/pair.py); a finding stands only if the median
of the per-block ratios (candidate / baseline) still passes the minimum effect in the same
direction. Cells this host cannot measure (another device kind, an artifact no longer on
disk) keep their finding, with the reason.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np

Key = tuple  # (model, method, format, device, batch_size[, shape]), as results.compare

# One warm-up per artifact, then `blocks` blocks of BLOCK_S each per artifact.
CONFIRM_MEASURE = {"warmup_s": 1.0, "accuracy": False, "timeout_s": 600.0}
BLOCK_S = 0.25

_VARIANT_SQL = """
SELECT v.runtime, v.precision, v.artifact_path, v.sha256, v.companions, v.eval_pack,
       m.threads
FROM cells c JOIN variants v USING (variant_id)
JOIN measurements m ON m.run_id = c.run_id AND m.cell_id = c.cell_id
WHERE c.run_id = ? AND c.model = ? AND c.method = ? AND c.format = ? AND c.device = ?
  AND m.batch_size = ? AND coalesce(m.shape, '') = ?"""


@dataclass(frozen=True)
class Remeasured:
    ratio: float | None              # median per-block candidate/baseline; None: not measured
    blocks: int = 0
    spread: tuple[float, float] = (0.0, 0.0)  # the middle half of the block ratios
    reason: str = ""                 # why it was not measured

    def note(self) -> str:
        if self.ratio is None:
            return f"not re-measured: {self.reason}"
        return (f"re-measured side by side, {self.blocks} alternating blocks: "
                f"candidate/baseline {self.ratio:.3f} (IQR {self.spread[0]:.3f}-"
                f"{self.spread[1]:.3f})")


def _cell(con: duckdb.DuckDBPyConnection, run_id: str, key: Key) -> dict | str:
    shape = key[5] if len(key) > 5 else ""
    row = con.execute(_VARIANT_SQL, [run_id, *key[:5], shape]).fetchone()
    if row is None:
        return f"run {run_id} has no measured variant for this cell"
    runtime, precision, path, sha256, companions, pack, threads = row
    pack = json.loads(pack) if pack else None
    if not pack:
        return f"run {run_id} predates stored eval packs (schema v5)"
    companions = json.loads(companions) if companions else []
    for needed in [path, pack["path"]]:
        if not Path(needed).is_file():
            return f"{needed} is no longer on disk (cache pruned?)"
    from agents.cell import CellPayload, FileRef

    return CellPayload(cell_id="/".join(key[:4]) + f"#{run_id}", device=key[3],
                       runtime=runtime, precision=precision,
                       artifact=FileRef(path, sha256, tuple(companions)),
                       eval_pack=FileRef(pack["path"], pack["sha256"]),
                       measure=CONFIRM_MEASURE | {"batch_sizes": [key[4]],
                                                  "threads": threads or 1, "shape": shape})


def cells_for(con: duckdb.DuckDBPyConnection, base_id: str, cand_id: str, key: Key,
              local_kinds: list[str]) -> dict | str:
    """The worker cells of both sides of a finding, or why it cannot be measured here."""
    if key[3] not in local_kinds:
        return f"this host has no {key[3]} (it has: {', '.join(local_kinds) or 'none'})"
    cells = {"base": _cell(con, base_id, key), "cand": _cell(con, cand_id, key)}
    for cell in cells.values():
        if isinstance(cell, str):
            return cell
    return cells


def remeasure(cells: dict | str, blocks: int) -> Remeasured:
    """Both artifacts in one fresh worker, alternating `blocks` blocks each."""
    from agents.launcher import run_pair

    if isinstance(cells, str):
        return Remeasured(None, reason=cells)
    result = run_pair([cells["base"], cells["cand"]], blocks, BLOCK_S,
                      CONFIRM_MEASURE["timeout_s"])
    if result.get("status") != "ok":
        first = (result.get("error") or "").strip().splitlines()
        return Remeasured(None, reason=f"the paired measurement {result.get('status')}: "
                                       f"{first[0] if first else ''}")
    q1, q3 = np.percentile(result["ratios"], [25, 75])
    return Remeasured(result["ratio"], len(result["ratios"]), (float(q1), float(q3)))
