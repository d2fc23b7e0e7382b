"""Each cell's figures over runs, with change points and what changed where they happened.

A cell's history is its rows in the finished runs of a tag (or of every run), oldest
first: one point per run with the figure, its CI where the figure has one, and the run's
context (git sha, host, the variant's id, artifact digest and toolchain versions). A step
is explained by the difference of that context between the run before it and the run at
it: a code change, a toolchain change, a different artifact, another host, or nothing
recorded (the machine itself)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import duckdb

from harness.errors import InputError
from harness.results.changepoints import Verdict, analyze

# metric -> (column of the results view, unit, higher is better, CI columns or None)
METRICS = {
    "p50": ("latency_p50_ms", "ms", False, ("latency_p50_ci_low_ms", "latency_p50_ci_high_ms")),
    "quality": ("quality", "", True, None),
    "size": ("size_bytes", "B", False, None),
    "memory": ("peak_rss_mb", "MB", False, None),
    "throughput": ("throughput_ips", "/s", True, None),
}
_FINISHED = "r.status IS DISTINCT FROM 'running' AND r.status IS DISTINCT FROM 'interrupted'"


@dataclass
class Point:
    run_id: str
    started_at: object
    value: float
    ci_low: float | None
    ci_high: float | None
    processes: int
    context: dict        # git_sha, host, harness_version, variant_id, sha256, toolchain


@dataclass
class CellHistory:
    key: tuple           # (model, method, format, device, batch_size, shape)
    points: list[Point] = field(default_factory=list)
    verdict: Verdict | None = None

    @property
    def label(self) -> str:
        return "/".join(self.key[:4])


def run_ids(con: duckdb.DuckDBPyConnection, tag: str | None, last: int) -> list[str]:
    """The last `last` finished runs (of `tag`), oldest first."""
    where = f"WHERE {_FINISHED}" + (" AND r.tag = ?" if tag else "")
    rows = con.execute(f"SELECT r.run_id FROM runs r {where} "
                       "ORDER BY r.started_at DESC, r.run_id DESC LIMIT ?",
                       ([tag] if tag else []) + [last]).fetchall()
    if not rows:
        raise InputError(f"no finished run{' tagged ' + repr(tag) if tag else ''} in this "
                         "database", field="--tag",
                         allowed="a tag given to `harness sweep --tag` (nightly runs use "
                                 "--tag nightly)")
    return [r[0] for r in reversed(rows)]


def load(con: duckdb.DuckDBPyConnection, runs: list[str], metric: str = "p50",
         filters: dict | None = None, include_emulated: bool = False) -> list[CellHistory]:
    """Every cell of these runs with its points in run order (cells of an emulated device
    only when asked for: their timings are the emulating host's)."""
    if metric not in METRICS:
        raise InputError(f"unknown metric {metric!r}", field="--metric",
                         allowed=", ".join(METRICS))
    column, _, _, ci = METRICS[metric]
    where, params = ["res.run_id IN (SELECT unnest(?))", "res.status = 'ok'",
                     f"res.{column} IS NOT NULL"], [runs]
    if not include_emulated:
        where.append("NOT res.emulated")
    for name, value in (filters or {}).items():
        if value is not None:
            where.append(f"res.{name} = ?")
            params.append(value)
    ci_cols = f"res.{ci[0]}, res.{ci[1]}" if ci else "NULL, NULL"
    rows = con.execute(f"""
        SELECT res.model, res.method, res.format, res.device, res.batch_size,
               coalesce(res.shape, ''), res.run_id, r.started_at, res.{column}, {ci_cols},
               coalesce(res.processes, 1), r.git_sha, r.host, r.harness_version,
               res.variant_id, v.sha256, v.toolchain
        FROM results res JOIN runs r ON r.run_id = res.run_id
        LEFT JOIN variants v ON v.variant_id = res.variant_id
        WHERE {' AND '.join(where)}
        ORDER BY res.model, res.method, res.format, res.device, res.batch_size,
                 coalesce(res.shape, ''), r.started_at""", params).fetchall()
    cells: dict[tuple, CellHistory] = {}
    for (*key, run_id, started, value, lo, hi, procs, sha, host, version, variant,
         digest, toolchain) in rows:
        history = cells.setdefault(tuple(key), CellHistory(tuple(key)))
        history.points.append(Point(run_id, started, float(value), lo, hi, procs, {
            "git_sha": sha, "host": host, "harness_version": version,
            "variant_id": variant, "sha256": digest,
            "toolchain": json.loads(toolchain) if toolchain else {}}))
    return list(cells.values())


def judge(histories: list[CellHistory], metric: str, min_effect: float) -> None:
    """A verdict per cell (harness/results/changepoints.py). Only p50 has a CI per run;
    with several worker processes per cell it spans them."""
    higher_is_better = METRICS[metric][2]
    for h in histories:
        values = [p.value for p in h.points]
        lows = [p.ci_low for p in h.points]
        highs = [p.ci_high for p in h.points]
        h.verdict = analyze(values, lows, highs, higher_is_better, min_effect)


def _versions(toolchain: dict) -> dict:
    """Package versions and options, flattened to 'name' / 'name.option'."""
    flat = {}
    for name, value in toolchain.items():
        if isinstance(value, dict):
            flat |= {f"{name}.{k}": json.dumps(v, sort_keys=True) if isinstance(v, (dict, list))
                     else str(v) for k, v in value.items()}
        else:
            flat[name] = str(value)
    return flat


def what_changed(before: Point, after: Point) -> list[str]:
    """The recorded differences between two runs of a cell, most specific first."""
    a, b = before.context, after.context
    out = []
    if a["variant_id"] != b["variant_id"]:
        out.append(f"variant {str(a['variant_id'])[:10]} -> {str(b['variant_id'])[:10]}")
    va, vb = _versions(a["toolchain"]), _versions(b["toolchain"])
    for name in sorted(set(va) | set(vb)):
        if va.get(name) != vb.get(name):
            out.append(f"{name} {va.get(name, '-')} -> {vb.get(name, '-')}")
    if a["sha256"] != b["sha256"]:
        out.append(f"artifact {str(a['sha256'])[:10]} -> {str(b['sha256'])[:10]}")
    if a["git_sha"] != b["git_sha"]:
        out.append(f"git {str(a['git_sha'])[:8]} -> {str(b['git_sha'])[:8]}")
    if a["harness_version"] != b["harness_version"]:
        out.append(f"harness {a['harness_version']} -> {b['harness_version']}")
    if a["host"] != b["host"]:
        out.append(f"host {a['host']} -> {b['host']}")
    return out or ["nothing recorded changed (same code, toolchain, artifact and host): "
                   "the machine or its load"]


def repro(db: str, before: Point, after: Point) -> str:
    """The command that measures the cell's two artifacts again, side by side."""
    return (f"harness compare {before.run_id} {after.run_id} --confirm --db {db}")
