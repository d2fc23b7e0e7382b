"""Run references on the command line: a literal run id, `tag:NAME` (the latest run with
that tag) or `tag:NAME~N` (the N-th run before it, so `tag:nightly~1` is the previous
nightly), resolved against the `runs` table."""

from __future__ import annotations

import duckdb

from harness.errors import InputError

SHOWN = 5  # how many existing runs or tags an error lists: enough to spot a typo

# A run still being written, or one cut short, is not a baseline anyone meant: a nightly
# gate must compare against the last nightly that ran to the end (ok, or with failed cells).
# An interrupted run can still be named by its id. NULL counts as finished.
_FINISHED = "status IS DISTINCT FROM 'running' AND status IS DISTINCT FROM 'interrupted'"


def resolve_run(con: duckdb.DuckDBPyConnection, ref: str, *, db: str | None = None) -> str:
    """The run id `ref` names; InputError naming the reference and what exists otherwise.
    `db` only labels the error message."""
    ref = ref.strip()
    if ref.startswith("tag:"):
        return _resolve_tag(con, ref, db)
    row = con.execute("SELECT run_id FROM runs WHERE run_id = ?", [ref]).fetchone()
    if row:
        return row[0]
    recent = [r[0] for r in con.execute(
        "SELECT run_id FROM runs ORDER BY started_at DESC NULLS LAST, run_id LIMIT ?",
        [SHOWN]).fetchall()]
    raise InputError(f"no run {ref!r} in this database", file=db, field="run reference",
                     allowed="a run id (most recent: " + (", ".join(recent) or "none, the "
                     "database has no runs") + "), tag:NAME or tag:NAME~N")


def _resolve_tag(con: duckdb.DuckDBPyConnection, ref: str, db: str | None) -> str:
    name, tilde, back = ref[len("tag:"):].partition("~")
    if not name or (tilde and not back.isdigit()):
        raise InputError(f"cannot read {ref!r}", file=db, field="run reference",
                         allowed="tag:NAME (latest run with that tag) or tag:NAME~N with N a "
                                 "whole number (N runs before the latest)")
    n = int(back or 0)
    # Ties on started_at are broken by run_id only so the answer is deterministic.
    rows = con.execute(f"SELECT run_id FROM runs WHERE tag = ? AND {_FINISHED} "
                       "ORDER BY started_at DESC NULLS LAST, run_id DESC LIMIT ?",
                       [name, n + 1]).fetchall()
    if len(rows) > n:
        return rows[n][0]
    if rows:
        raise InputError(f"{ref!r} asks for the run {n} before the latest tagged {name!r}, but "
                         f"only {len(rows)} finished run(s) carry that tag", file=db,
                         field="run reference",
                         allowed=f"tag:{name}~0 to tag:{name}~{len(rows) - 1}")
    tags = con.execute(f"SELECT tag, count(*) FROM runs WHERE tag IS NOT NULL AND {_FINISHED} "
                       "GROUP BY tag ORDER BY max(started_at) DESC NULLS LAST, tag LIMIT ?",
                       [SHOWN]).fetchall()
    known = ", ".join(f"tag:{t} ({k} run{'s' * (k != 1)})" for t, k in tags)
    raise InputError(f"no finished run is tagged {name!r} ({ref!r})", file=db,
                     field="run reference",
                     allowed=known or "none: no finished run has a tag (sweep --tag NAME)")
