"""`harness compare --confirm`: measure a flagged cell's two artifacts again, interleaved.

Two runs of a sweep are minutes or days apart; on a shared host the machine's speed moves
between them by more than a real regression (10-50% seen on a 2-core VM, while the three
processes of one cell inside one run agreed within a few %). Statistics on the stored
samples cannot tell such drift from a change in the artifact. Measuring the baseline's and
the candidate's artifacts again, alternating A B, B A, A B ... in fresh workers on this
host, puts both under the same conditions; a finding stands only if the paired ratio
(median over rounds of candidate p50 / baseline p50) still passes the minimum effect in
the same direction. Cells this host cannot measure (another device kind, an artifact no
longer on disk) keep their finding, with the reason.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path

import duckdb

from harness.compare import Key

# Short windows: the rounds, not the window length, are what pairs the two artifacts.
CONFIRM_MEASURE = {"warmup_s": 0.5, "min_iterations": 50, "min_seconds": 2.0,
                   "max_seconds": 5.0, "ci_rel_width": 0.02, "accuracy": False,
                   "timeout_s": 600.0, "processes": 1}

_VARIANT_SQL = """
SELECT v.runtime, v.precision, v.artifact_path, v.sha256, v.companions, v.eval_pack,
       m.threads
FROM cells c JOIN variants v USING (variant_id)
JOIN measurements m ON m.run_id = c.run_id AND m.cell_id = c.cell_id
WHERE c.run_id = ? AND c.model = ? AND c.method = ? AND c.format = ? AND c.device = ?
  AND m.batch_size = ?"""


@dataclass(frozen=True)
class Remeasured:
    ratio: float | None              # median paired candidate/baseline p50; None: not measured
    ratios: tuple[float, ...] = ()
    reason: str = ""                 # why it was not measured

    def note(self) -> str:
        if self.ratio is None:
            return f"not re-measured: {self.reason}"
        spread = f"{min(self.ratios):.3f}-{max(self.ratios):.3f}"
        return (f"re-measured interleaved x{len(self.ratios)}: candidate/baseline "
                f"{self.ratio:.3f} ({spread})")


def _cell(con: duckdb.DuckDBPyConnection, run_id: str, key: Key) -> dict | str:
    row = con.execute(_VARIANT_SQL, [run_id, *key]).fetchone()
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
    return {"cell_id": "/".join(key[:4]) + f"#{run_id}", "device": key[3],
            "runtime": runtime, "precision": precision,
            "artifact": {"path": path, "sha256": sha256, "companions": companions},
            "eval_pack": pack,
            "measure": CONFIRM_MEASURE | {"batch_sizes": [key[4]], "threads": threads or 1}}


def _p50(cell: dict) -> float | str:
    from agents.launcher import run_cell

    result = run_cell(cell, CONFIRM_MEASURE["timeout_s"])
    if result.get("status") != "ok":
        first = (result.get("error") or "").strip().splitlines()
        return f"{result.get('status')}: {first[0] if first else ''}"
    return result["measurements"][0]["latency_p50_ms"]


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


def remeasure(cells: dict | str, rounds: int) -> Remeasured:
    """Alternate the two artifacts for `rounds` rounds (A B, B A, ...), a fresh worker
    each, and pair each round's p50s."""
    if isinstance(cells, str):
        return Remeasured(None, reason=cells)
    p50s: dict[str, list[float]] = {"base": [], "cand": []}
    for r in range(rounds):
        for side in (("base", "cand") if r % 2 == 0 else ("cand", "base")):
            value = _p50(cells[side])
            if isinstance(value, str):
                return Remeasured(None, reason=f"the {side} artifact {value}")
            p50s[side].append(value)
    ratios = tuple(c / b for b, c in zip(p50s["base"], p50s["cand"]))
    return Remeasured(statistics.median(ratios), ratios)
