"""`harness sweep MATRIX`: run the sweep, then the summary, the report beside the database
and the exit code (1 when cells failed, when nothing was measured, or with --strict when a
planned cell had no agent)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from harness.defaults import DEFAULT_DB
from harness.errors import InputError


def run_sweep_command(args, console) -> int:
    from harness.results.store import open_read_only
    from harness.results.summary import print_summary
    from harness.sweep import SweepInterrupted, run_sweep

    try:
        result = run_sweep(args.matrix, args.db, address=args.address, tag=args.tag,
                           cache_dir=args.cache, resume=args.resume, console=console,
                           verbose=args.verbose)
    except SweepInterrupted as exc:
        console.print(f"[bold yellow]interrupted[/]: run {exc.run_id} is marked interrupted; "
                      "every cell finished so far is in the database. Complete it with "
                      f"`harness sweep {args.matrix} --db {args.db} --resume {exc.run_id}`")
        # The database is closed and Ray shut down; skip interpreter finalisation, where a
        # Ray core worker interrupted half-way through ray.init can crash (SIGSEGV).
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    con = open_read_only(args.db)
    try:
        print_summary(con, result.run_id, console)
        report = _write_sweep_report(con, result.run_id, args.db, console)
        profiled = con.execute("SELECT count(*) FROM op_profiles WHERE run_id = ?",
                               [result.run_id]).fetchone()[0]
    finally:
        con.close()
    counts = ", ".join(f"{n} {k}" for k, n in sorted(result.counts.items()))
    console.print(f"run {result.run_id}: {result.status} ({counts}); results in {args.db} "
                  f"(try: harness query \"select * from results where run_id = "
                  f"'{result.run_id}'\" --db {args.db})")
    if report:
        console.print(f"report: {report}", markup=False, highlight=False)
    if profiled:
        console.print(f"why fast or slow: harness profile {result.run_id} --db {args.db}",
                      markup=False, highlight=False)
    return _sweep_exit_code(result.counts, result.status, args.strict, console)


def sweep_report_path(db: str) -> Path:
    """results/report.html beside the default database, else <db name>.report.html beside
    the database given with --db."""
    db_path = Path(db)
    if db_path.resolve() == Path(DEFAULT_DB).resolve():
        return db_path.parent / "report.html"
    return db_path.with_name(db_path.stem + ".report.html")


def _write_sweep_report(con, run_id: str, db: str, console) -> Path | None:
    from harness.results.report import write_report

    out = sweep_report_path(db)
    try:
        return write_report(con, run_id, out)
    except InputError as exc:  # the results are in the database whatever happens here
        console.print(f"[yellow]no report written[/]: {exc}")
        return None


def _sweep_exit_code(counts: dict, status: str, strict: bool, console) -> int:
    """1 when cells failed or timed out, when nothing was measured at all (a nightly whose
    only agent is gone must not pass), and with --strict when a planned cell had no agent."""
    if status == "failed":
        return 1
    if not counts.get("ok"):
        console.print("[bold red]no cell was measured[/]: every planned cell was skipped or "
                      "unavailable (see the summary above and `harness agents`)")
        return 1
    if strict and counts.get("unavailable"):
        console.print(f"[bold red]--strict[/]: {counts['unavailable']} planned cell(s) had no "
                      "agent of their device")
        return 1
    return 0
