"""DuckDB results store: migrations, and the single writer.

Only the coordinator writes. Each cell's rows (cell, measurements, raw samples) go in one
transaction, so a crash leaves a cell either whole or absent. Raw samples are inserted
column-wise (row-by-row executemany is about 100x slower)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import numpy as np

from harness.errors import InputError
from harness.results.scenario_store import write_scenarios
from harness.results.schema import MEASUREMENT_COLUMNS, MIGRATIONS, SCHEMA_VERSION, VARIANT_COLUMNS_V3




def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _connect(path: Path, read_only: bool) -> duckdb.DuckDBPyConnection:
    try:
        return duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as exc:
        text = str(exc)
        if "lock" in text.lower():
            raise InputError("the database is in use by another process (a running sweep "
                             "holds the single writer lock); wait for it to finish or query a "
                             "copy", file=str(path)) from None
        raise InputError(f"cannot open the database: {text}", file=str(path)) from None


def migrate(con: duckdb.DuckDBPyConnection, path: str = "") -> int:
    con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
                "applied_at TIMESTAMP, description VARCHAR)")
    current = con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]
    if current > SCHEMA_VERSION:
        raise InputError(f"database schema version {current} is newer than this harness "
                         f"supports ({SCHEMA_VERSION}); upgrade the harness", file=path)
    for version, description, statements in MIGRATIONS:
        if version <= current:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            for sql in statements:
                con.execute(sql)
            con.execute("INSERT INTO schema_version VALUES (?, ?, ?)",
                        [version, utcnow(), description])
            con.execute("COMMIT")
        except Exception:
            try:
                con.execute("ROLLBACK")
            except duckdb.Error:
                pass  # keep the original error
            raise
    return SCHEMA_VERSION


def open_read_only(path: str | Path) -> duckdb.DuckDBPyConnection:
    path = Path(path)
    if not path.is_file():
        raise InputError("no results database here (run `harness sweep` first or pass --db)",
                         file=str(path))
    return _connect(path, read_only=True)


def _profile_columns(profile: dict | None) -> dict:
    """A row's profile pass, as the measurement's columns (None: no pass was asked for)."""
    if not profile:
        return {}
    if profile.get("reason"):
        return {"profile_note": profile["reason"]}
    return {"profile_source": profile["source"], "profile_runs": profile["runs"],
            "profile_total_ms": profile["total_ms"]}


class Store:
    """The single writer of one results database."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot create the database folder: {exc}",
                             file=str(self.path)) from None
        self.con = _connect(self.path, read_only=False)
        migrate(self.con, str(self.path))

    def close(self, quiet: bool = False) -> None:
        """Close (checkpointing the write-ahead log). quiet: after a storage error, a
        failing close must not hide the first error."""
        try:
            self.con.close()
        except (duckdb.Error, OSError):
            if not quiet:
                raise

    # runs -------------------------------------------------------------------------------
    def start_run(self, run: dict) -> None:
        run = run | {"status": "running", "started_at": utcnow(),
                     "schema_version": SCHEMA_VERSION}
        cols = ", ".join(run)
        self.con.execute(f"INSERT INTO runs ({cols}) VALUES ({', '.join('?' * len(run))})",
                         list(run.values()))

    def cluster_ready(self, run_id: str) -> None:
        """The cluster is up (the embedded node started, or the driver joined)."""
        self.con.execute("UPDATE runs SET cluster_ready_at = ? WHERE run_id = ?",
                         [utcnow(), run_id])

    def run_row(self, run_id: str) -> dict | None:
        cur = self.con.execute("SELECT * FROM runs WHERE run_id = ?", [run_id])
        row = cur.fetchone()
        return dict(zip([d[0] for d in cur.description], row)) if row else None

    def reopen_run(self, run_id: str) -> None:
        self.con.execute("UPDATE runs SET status = 'running', finished_at = NULL "
                         "WHERE run_id = ?", [run_id])

    def final_cells(self, run_id: str) -> set[str]:
        """Cells with a final result; `unavailable` is not final (an agent may join)."""
        rows = self.con.execute("SELECT cell_id FROM cells WHERE run_id = ? AND status IN "
                                "('ok', 'failed', 'timeout', 'skipped')", [run_id]).fetchall()
        return {r[0] for r in rows}

    def status_counts(self, run_id: str) -> dict[str, int]:
        return dict(self.con.execute("SELECT status, count(*) FROM cells WHERE run_id = ? "
                                     "GROUP BY status", [run_id]).fetchall())

    def finish_run(self, run_id: str, status: str) -> None:
        self.con.execute("UPDATE runs SET status = ?, finished_at = ? WHERE run_id = ?",
                         [status, utcnow(), run_id])

    # variants and devices ---------------------------------------------------------------
    def write_variant(self, manifest: dict) -> None:
        row = {
            "variant_id": manifest["variant_id"], "model": manifest["model"],
            "method": manifest["method"], "method_config": json.dumps(manifest["method_config"]),
            "format": manifest["format"], "precision": manifest["precision"],
            "runtime": manifest["runtime"], "artifact_path": manifest["artifact_path"],
            "sha256": manifest["sha256"], "size_bytes": manifest["size_bytes"],
            "build_seconds": manifest["build_seconds"], "parity": json.dumps(manifest["parity"]),
            # NULL when the build host could not measure parity: not measured is not passed
            "suspect": manifest["parity"].get("suspect"),
            "toolchain": json.dumps(manifest["toolchain"]),
            "source": json.dumps(manifest.get("source", {})),
        }
        model_stats = manifest.get("model_stats") or {}
        for name in VARIANT_COLUMNS_V3:
            row[name] = model_stats.get(name)
        row["method_report"] = json.dumps(manifest.get("method_report") or {})
        row["task"] = manifest.get("task")
        row["inputs"] = json.dumps(manifest.get("inputs"))
        row["companions"] = json.dumps(manifest.get("companions") or [])
        pack = manifest.get("eval_pack")
        row["eval_pack"] = json.dumps({"path": pack["path"], "sha256": pack["sha256"]}
                                      if pack else None)
        self.con.execute(
            f"INSERT OR REPLACE INTO variants ({', '.join(row)}) "
            f"VALUES ({', '.join('?' * len(row))})", list(row.values()))

    def write_device(self, device_id: str, fp: dict, runtimes: dict) -> None:
        self.con.execute(
            "INSERT OR REPLACE INTO devices VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [device_id, fp["kind"], fp["host"], fp.get("name"), fp.get("cpu_model"),
             fp.get("gpu_name"), fp.get("driver"),
             json.dumps(runtimes | ({"emulator": fp["emulator"]} if fp.get("emulator") else {})),
             bool(fp.get("emulated", False))])

    # cells ------------------------------------------------------------------------------
    def write_cell(self, run_id: str, cell, *, status: str, error: str | None = None,
                   variant_id: str | None = None, device_id: str | None = None,
                   build_cached: bool | None = None, started_at: datetime | None = None,
                   measurements: list[dict] = (), build_wall_s: float | None = None,
                   measure_wall_s: float | None = None,
                   measure_phases: dict | None = None) -> None:
        """One transaction per cell: its row, its measurements and its raw samples."""
        now = utcnow()
        self.con.execute("BEGIN TRANSACTION")
        try:
            self.con.execute(
                "INSERT OR REPLACE INTO cells (run_id, cell_id, model, method, format, device, "
                "variant_id, device_id, status, error, build_cached, started_at, finished_at, "
                "build_wall_s, measure_wall_s, measure_phases) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [run_id, cell.cell_id, cell.model, cell.method, cell.format, cell.device,
                 variant_id, device_id, status, error, build_cached, started_at or now, now,
                 build_wall_s, measure_wall_s,
                 json.dumps(measure_phases) if measure_phases else None])
            for row in measurements:
                self._write_measurement(run_id, cell.cell_id, row)
            self.con.execute("COMMIT")
        except Exception:
            self._rollback()
            raise

    def _write_profile(self, run_id: str, cell_id: str, row: dict) -> None:
        layers = (row.get("profile") or {}).get("layers") or []
        key = [run_id, cell_id, row["batch_size"], row["shape"]]
        self.con.execute("DELETE FROM op_profiles WHERE run_id = ? AND cell_id = ? AND "
                         "batch_size = ? AND shape = ?", key)
        if layers:
            self.con.executemany(
                "INSERT INTO op_profiles VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [key + [layer["order"], layer["layer"], layer["op_type"], layer["exec_type"],
                        layer["precision"], layer.get("shapes"), layer["time_ms"],
                        layer["share"]]
                 for layer in layers])

    def _rollback(self) -> None:
        """Roll back without hiding the error that caused it (after a failed COMMIT, e.g. on a
        full disk, DuckDB has no transaction left to roll back)."""
        try:
            self.con.execute("ROLLBACK")
        except duckdb.Error:
            pass

    def _write_measurement(self, run_id: str, cell_id: str, row: dict) -> None:
        cols = list(MEASUREMENT_COLUMNS)
        row = row | {"shape": row.get("shape") or ""} | _profile_columns(row.get("profile"))
        values = [run_id, cell_id] + [row.get(c) for c in cols]
        self.con.execute(
            f"INSERT OR REPLACE INTO measurements (run_id, cell_id, {', '.join(cols)}) "
            f"VALUES ({', '.join('?' * len(values))})", values)
        metrics = {k: v for k, v in (row.get("metrics") or {}).items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)}
        if metrics:
            self.con.execute("DELETE FROM metrics WHERE run_id = ? AND cell_id = ? AND "
                             "batch_size = ? AND shape = ?",
                             [run_id, cell_id, row["batch_size"], row["shape"]])
            self.con.executemany(
                "INSERT INTO metrics VALUES (?, ?, ?, ?, ?, ?)",
                [[run_id, cell_id, row["batch_size"], row["shape"], name, float(value)]
                 for name, value in sorted(metrics.items())])
        self._write_profile(run_id, cell_id, row)
        write_scenarios(self.con, run_id, cell_id, row)
        samples = np.asarray(row.get("samples_ms", []), dtype=np.float64)
        if len(samples):
            batch = {  # noqa: F841 - read by DuckDB's replacement scan below
                "run_id": np.full(len(samples), run_id, dtype=object),
                "cell_id": np.full(len(samples), cell_id, dtype=object),
                "batch_size": np.full(len(samples), row["batch_size"], dtype=np.int32),
                "shape": np.full(len(samples), row["shape"], dtype=object),
                "iteration": np.arange(len(samples), dtype=np.int32),
                "latency_ms": samples,
                # which worker process took each sample (measure.processes > 1)
                "process": np.asarray(row.get("samples_process") or np.zeros(len(samples)),
                                      dtype=np.int32),
            }
            self.con.execute("DELETE FROM latency_samples WHERE run_id = ? AND cell_id = ? "
                             "AND batch_size = ? AND shape = ?",
                             [run_id, cell_id, row["batch_size"], row["shape"]])
            self.con.execute("INSERT INTO latency_samples BY NAME SELECT * FROM batch")
