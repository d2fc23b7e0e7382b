"""`harness compare --history N`: each latency finding read against its cell's last N runs
before the candidate. A finding either continues a trend the history already shows (a
drift or a step the same way), sits inside the cell's usual spread (what its recent runs
vary by: not a change of this run), or is a new step."""

from __future__ import annotations

from dataclasses import replace

import duckdb

from harness.results import history
from harness.results.changepoints import MIN_RUNS, analyze

SPREAD_SIGMAS = 3.0  # the usual spread: the last level +- 3 robust standard deviations
#                      (never less than the minimum effect)


def _prior_runs(con: duckdb.DuckDBPyConnection, candidate: str, n: int) -> list[str]:
    """Up to n finished runs before the candidate, of its tag when it has one."""
    tag, started = con.execute("SELECT tag, started_at FROM runs WHERE run_id = ?",
                               [candidate]).fetchone()
    where = ("started_at < ? AND status IS DISTINCT FROM 'running' "
             "AND status IS DISTINCT FROM 'interrupted'") + (" AND tag = ?" if tag else "")
    rows = con.execute(f"SELECT run_id FROM runs WHERE {where} ORDER BY started_at DESC "
                       "LIMIT ?", [started] + ([tag] if tag else []) + [n]).fetchall()
    return [r[0] for r in reversed(rows)]


def classify(values: list[float], candidate: float, min_effect: float) -> str:
    """How a candidate's p50 reads against the cell's previous values (oldest first)."""
    if len(values) < MIN_RUNS:
        return f"history too short ({len(values)} earlier runs; {MIN_RUNS} needed)"
    verdict = analyze(values, min_effect=min_effect)
    if verdict.kind == "unstable":
        return (f"the cell's history is unstable (runs spread ±{verdict.spread:.0%}): this "
                "finding may be noise")
    level = verdict.levels[-1].value
    worse = candidate > level
    if verdict.kind == "drift" and (verdict.drift > 0) == worse:
        return (f"continues a drift ({'worse' if worse else 'better'} by "
                f"{abs(verdict.drift):.0%} over the {len(values)} earlier runs)")
    # within min_effect of the level is no step by definition, whatever the spread
    band = max(SPREAD_SIGMAS * (verdict.spread or 0.0), min_effect)
    if abs(candidate / level - 1) <= band:
        return f"inside the cell's usual spread (its last level {level:.3g} ±{band:.0%})"
    if verdict.kind == "step":
        last = verdict.changes[-1]
        if last.worse == worse and last.index >= len(values) - 2:
            return (f"continues a step that began {len(values) - last.index} run(s) earlier "
                    f"({last.change:+.0%})")
    return f"a new step: {candidate / level - 1:+.0%} from the level of the earlier runs"


def annotate(con: duckdb.DuckDBPyConnection, cmp, candidate: str, n: int,
             min_effect: float) -> None:
    """Add the history reading to every latency finding's note."""
    runs = _prior_runs(con, candidate, n)
    if not runs:
        return
    cells = {h.key: h for h in history.load(con, runs, "p50")}
    for findings in (cmp.regressions, cmp.improvements):
        for k, f in enumerate(findings):
            if f.kind != "latency":
                continue
            h = cells.get(tuple(f.key[:4]) + (f.key[4], f.key[5] if len(f.key) > 5 else ""))
            values = [p.value for p in h.points] if h else []
            reading = classify(values, f.candidate, min_effect)
            findings[k] = replace(f, note=f"{f.note}; history: {reading}")
