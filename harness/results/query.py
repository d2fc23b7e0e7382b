"""`harness query`: read-only SQL over the results database, as a table, CSV or JSON."""

from __future__ import annotations

import csv
import json
import sys
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb

from harness.errors import InputError
from harness.results.store import open_read_only


def _plain(value):
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def read_sql(sql_or_file: str) -> str:
    """SQL text, or the path of a .sql file (results/queries/*.sql)."""
    if sql_or_file.strip().endswith(".sql") and "\n" not in sql_or_file:
        path = Path(sql_or_file.strip())
        if not path.is_file():
            raise InputError("query file not found", file=str(path))
        return path.read_text()
    return sql_or_file


def run_query(sql: str, db: str, fmt: str, out=None) -> int:
    out = out or sys.stdout
    sql = read_sql(sql)
    con = open_read_only(db)
    try:
        try:
            cursor = con.execute(sql)
        except duckdb.Error as exc:
            raise InputError(f"the query failed: {exc}", file=db) from None
        columns = [d[0] for d in cursor.description or []]
        rows = cursor.fetchall()
    finally:
        con.close()
    if fmt == "json":
        json.dump([{c: _plain(v) for c, v in zip(columns, row)} for row in rows], out, indent=2)
        out.write("\n")
    elif fmt == "csv":
        writer = csv.writer(out)
        writer.writerow(columns)
        writer.writerows([[_plain(v) for v in row] for row in rows])
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(show_lines=False)
        for c in columns:
            table.add_column(c, overflow="fold")
        for row in rows:
            table.add_row(*("NULL" if v is None else
                            f"{v:.4g}" if isinstance(v, float) else str(v) for v in row))
        wide = None if getattr(out, "isatty", lambda: False)() else 160  # logs: no 80-col cut
        Console(file=out, width=wide).print(table)
        print(f"{len(rows)} row(s)", file=out)
    return 0
