"""Where a sweep's time goes, from the database's own timestamps: wall time, Ray start-up, the
sum of build tasks, the sum of measurements, what neither explains, and the time to the first
measured row.

    .venv/bin/python benchmarks/sweep_time.py matrix/edge.yaml            # sweep, cold cache
    .venv/bin/python benchmarks/sweep_time.py matrix/edge.yaml --cache results/cache   # warm
    .venv/bin/python benchmarks/sweep_time.py --db results/harness.duckdb --run RUN_ID

A matrix is swept into a new database (and, unless --cache is given, a new artifact cache:
a cold run). Exit status 1 when a target is missed: --max-wall (seconds), --max-first-row
(seconds from the run's start to its first measured cell) and --max-overhead (wall time over
build + measure time, 1.10 by default)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parent.parent

TIMINGS_SQL = """
WITH run AS (SELECT * FROM runs WHERE run_id = $run),
builds AS (  -- one build task per variant (its cells share it)
    SELECT model, method, format, max(build_wall_s) AS wall, bool_and(build_cached) AS cached
    FROM cells WHERE run_id = $run AND build_wall_s IS NOT NULL GROUP BY ALL)
SELECT
    epoch(run.finished_at - run.started_at) AS wall_s,
    epoch(run.cluster_ready_at - run.started_at) AS startup_s,
    (SELECT coalesce(sum(wall), 0) FROM builds) AS build_s,
    (SELECT count(*) FROM builds WHERE NOT coalesce(cached, false)) AS built,
    (SELECT count(*) FROM builds WHERE cached) AS cached,
    (SELECT coalesce(sum(measure_wall_s), 0) FROM cells WHERE run_id = $run) AS measure_s,
    (SELECT count(*) FROM cells WHERE run_id = $run AND measure_wall_s IS NOT NULL)
        AS measured,
    (SELECT epoch(min(finished_at) - run.started_at) FROM cells
     WHERE run_id = $run AND status = 'ok') AS first_row_s,
    run.status
FROM run
"""


def sweep(matrix: str, cache: str | None, db: Path) -> str:
    """Sweep `matrix` into `db` through the CLI, as a user runs it; returns the run id."""
    with tempfile.TemporaryDirectory(prefix="sweep-time-cache-") as cold:
        cmd = [sys.executable, "-m", "harness.cli", "sweep", matrix, "--db", str(db),
               "--cache", cache or cold]
        done = subprocess.run(cmd, cwd=REPO, check=False)
    if done.returncode not in (0, 1):  # 1: some cell failed, which the timings still show
        sys.exit(f"the sweep exited {done.returncode}")
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute("SELECT run_id FROM runs ORDER BY started_at DESC LIMIT 1"
                           ).fetchone()[0]
    finally:
        con.close()


PHASE_ORDER = ("start", "setup", "load", "quality", "timed", "profile", "scenarios", "other")

SLOWEST_SQL = """
SELECT model || '/' || method || '/' || format AS variant, max(build_wall_s) AS build_s,
       sum(measure_wall_s) AS measure_s
FROM cells WHERE run_id = $run GROUP BY ALL ORDER BY coalesce(build_s, 0) + coalesce(measure_s, 0)
DESC LIMIT 8
"""


def timings(db: Path, run: str) -> dict:
    con = duckdb.connect(str(db), read_only=True)
    try:
        cur = con.execute(TIMINGS_SQL, {"run": run})
        row = cur.fetchone()
        if row is None:
            sys.exit(f"no run {run!r} in {db}")
        found = dict(zip([d[0] for d in cur.description], row))
        phases: dict[str, float] = {}
        for (text,) in con.execute("SELECT measure_phases FROM cells WHERE run_id = $run "
                                   "AND measure_phases IS NOT NULL", {"run": run}).fetchall():
            for phase, seconds in json.loads(text).items():
                phases[phase] = phases.get(phase, 0.0) + seconds
        found["phases"] = phases
        found["slowest"] = con.execute(SLOWEST_SQL, {"run": run}).fetchall()
        return found
    finally:
        con.close()


def print_breakdown(t: dict) -> None:
    """The measurements' time by phase (schema v13) and the variants that cost the most."""
    if t["phases"]:
        print("  measurement time by phase (summed over cells):")
        for phase in sorted(t["phases"], key=lambda p: (PHASE_ORDER + (p,)).index(p)):
            print(f"    {phase:<12} {t['phases'][phase]:8.1f} s")
    print("  costliest variants (build + measure):")
    for variant, build_s, measure_s in t["slowest"]:
        print(f"    {variant:<40} build {build_s or 0:6.1f} s  measure {measure_s or 0:6.1f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("matrix", nargs="?", help="sweep this matrix (else --db and --run)")
    parser.add_argument("--cache", help="artifact cache to sweep with (default: a new one)")
    parser.add_argument("--db", type=Path, help="with a matrix: sweep into this database "
                        "(kept); without: the database to read --run from")
    parser.add_argument("--run", help="the run to analyse (with --db)")
    parser.add_argument("--max-wall", type=float, default=480.0)
    parser.add_argument("--max-first-row", type=float, default=120.0)
    parser.add_argument("--max-overhead", type=float, default=1.10)
    args = parser.parse_args(argv)
    if args.matrix and args.db:  # keep the database (to query the run afterwards)
        run = sweep(args.matrix, args.cache, args.db)
        t = timings(args.db, run)
    elif args.matrix:
        with tempfile.TemporaryDirectory(prefix="sweep-time-") as tmp:
            db = Path(tmp) / "sweep.duckdb"
            run = sweep(args.matrix, args.cache, db)
            t = timings(db, run)
    elif args.db and args.run:
        run, t = args.run, timings(args.db, args.run)
    else:
        parser.error("give a matrix to sweep, or --db and --run")
    if t["startup_s"] is None:
        sys.exit(f"run {run} has no cluster start time (swept before schema v9?)")
    busy = t["build_s"] + t["measure_s"]
    overhead = t["wall_s"] / busy if busy else float("inf")
    print(f"run {run} ({t['status']})")
    print(f"  wall time          {t['wall_s']:8.1f} s   (target <= {args.max_wall:.0f} s)")
    print(f"  Ray start-up       {t['startup_s']:8.1f} s")
    print(f"  build tasks        {t['build_s']:8.1f} s   ({t['built']} built, "
          f"{t['cached']} from the cache)")
    print(f"  measurements       {t['measure_s']:8.1f} s   ({t['measured']} cells)")
    print(f"  the rest           {t['wall_s'] - t['startup_s'] - busy:8.1f} s   (planning, "
          "storing, scheduling, worker start-up)")
    print(f"  wall / (build + measure) {overhead:.3f}   (target <= {args.max_overhead:.2f})")
    print_breakdown(t)
    first = t["first_row_s"]
    print(f"  first measured row {first if first is not None else float('nan'):8.1f} s   "
          f"(target <= {args.max_first_row:.0f} s)")
    missed = [name for name, bad in (
        ("wall time", t["wall_s"] > args.max_wall),
        ("overhead", overhead > args.max_overhead),
        ("first row", first is None or first > args.max_first_row)) if bad]
    print("targets: " + ("all met" if not missed else "MISSED " + ", ".join(missed)))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
