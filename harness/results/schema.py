"""The results database schema, as an ordered list of migrations.

A database records the versions applied; opening it applies the missing ones in a
transaction each. Never a silent rebuild: a newer database than this code is refused."""

from __future__ import annotations

# Migrations are frozen once released: V1's columns stay as they were; later versions add.
MEASUREMENT_COLUMNS_V1 = {
    "batch_size": "INTEGER", "threads": "INTEGER", "precision": "VARCHAR",
    "latency_p50_ms": "DOUBLE", "latency_p90_ms": "DOUBLE", "latency_p95_ms": "DOUBLE",
    "latency_p99_ms": "DOUBLE", "latency_mean_ms": "DOUBLE", "latency_std_ms": "DOUBLE",
    "latency_min_ms": "DOUBLE", "latency_cv": "DOUBLE", "latency_p50_ci_low_ms": "DOUBLE",
    "latency_p50_ci_high_ms": "DOUBLE", "iterations": "INTEGER", "warmup_calls": "INTEGER",
    "throughput_ips": "DOUBLE", "load_ms": "DOUBLE", "peak_rss_mb": "DOUBLE",
    "rss_before_load_mb": "DOUBLE", "peak_device_mem_mb": "DOUBLE",
    "energy_mj_per_inference": "DOUBLE", "mean_power_mw": "DOUBLE", "energy_sensor": "VARCHAR",
    "energy_note": "VARCHAR", "accuracy_top1": "DOUBLE", "accuracy_top5": "DOUBLE",
    "accuracy_dataset": "VARCHAR", "accuracy_samples": "INTEGER", "reference_top1": "DOUBLE",
    "fidelity_top1_agreement": "DOUBLE", "fidelity_max_abs_err": "DOUBLE",
    "fidelity_cosine_min": "DOUBLE", "fidelity_sqnr_db": "DOUBLE", "stop_reason": "VARCHAR",
    "latency_includes": "VARCHAR",
}
MEASUREMENT_COLUMNS_V4 = {"energy_idle_mw": "DOUBLE", "energy_window_s": "DOUBLE",
                          "latency_noisy": "BOOLEAN"}
# v5: the host-timed call beside a runtime-timed p50 (OpenVINO), the worker processes a
# row pools and each one's p50, the launcher's sampled peak RSS of the worker's tree.
MEASUREMENT_COLUMNS_V5 = {"host_latency_p50_ms": "DOUBLE", "processes": "INTEGER",
                          "latency_process_p50s_ms": "DOUBLE[]", "peak_rss_sampled_mb": "DOUBLE"}
# v7: notes on a figure a reader must not take at face value (int8 that may saturate)
MEASUREMENT_COLUMNS_V7 = {"warnings": "VARCHAR"}
# v8: rows per shape of the named axes (measure.shapes); quality per the model's task: the
# figure that gates a pick, its metric, the fp32 source's value of it (labelled metrics)
# and, for fidelity metrics, the threshold of the row's precision
MEASUREMENT_COLUMNS_V8 = {"shape": "VARCHAR", "quality": "DOUBLE", "quality_metric": "VARCHAR",
                          "reference_quality": "DOUBLE", "quality_threshold": "DOUBLE"}
# v10: the per-layer profile pass of a row: its profiler, runs and total (the layers are in
# op_profiles), or the reason there is none
MEASUREMENT_COLUMNS_V10 = {"profile_source": "VARCHAR", "profile_runs": "INTEGER",
                           "profile_total_ms": "DOUBLE", "profile_note": "VARCHAR"}
MEASUREMENT_COLUMNS = (MEASUREMENT_COLUMNS_V1 | {"niceness": "INTEGER"}  # v2
                       | MEASUREMENT_COLUMNS_V4 | MEASUREMENT_COLUMNS_V5
                       | MEASUREMENT_COLUMNS_V7 | MEASUREMENT_COLUMNS_V8
                       | MEASUREMENT_COLUMNS_V10)

_MEASUREMENT_DDL = ",\n    ".join(f"{name} {kind}" for name, kind in MEASUREMENT_COLUMNS_V1.items())

V1 = [
    """CREATE TABLE runs (
    run_id VARCHAR PRIMARY KEY, matrix_name VARCHAR, matrix_hash VARCHAR, matrix_yaml VARCHAR,
    matrix_path VARCHAR, tag VARCHAR, started_at TIMESTAMP, finished_at TIMESTAMP,
    status VARCHAR, harness_version VARCHAR, git_sha VARCHAR, host VARCHAR, address VARCHAR,
    schema_version INTEGER)""",
    """CREATE TABLE variants (
    variant_id VARCHAR PRIMARY KEY, model VARCHAR, method VARCHAR, method_config JSON,
    format VARCHAR, precision VARCHAR, runtime VARCHAR, artifact_path VARCHAR, sha256 VARCHAR,
    size_bytes BIGINT, build_seconds DOUBLE, parity JSON, suspect BOOLEAN, toolchain JSON,
    source JSON)""",
    """CREATE TABLE devices (
    device_id VARCHAR PRIMARY KEY, kind VARCHAR, host VARCHAR, name VARCHAR,
    cpu_model VARCHAR, gpu_name VARCHAR, driver VARCHAR, runtimes JSON,
    emulated BOOLEAN DEFAULT false)""",
    """CREATE TABLE cells (
    run_id VARCHAR, cell_id VARCHAR, model VARCHAR, method VARCHAR, format VARCHAR,
    device VARCHAR, variant_id VARCHAR, device_id VARCHAR,
    status VARCHAR CHECK (status IN ('ok', 'failed', 'timeout', 'skipped', 'unavailable')),
    error VARCHAR, build_cached BOOLEAN, started_at TIMESTAMP, finished_at TIMESTAMP,
    PRIMARY KEY (run_id, cell_id))""",
    f"""CREATE TABLE measurements (
    run_id VARCHAR, cell_id VARCHAR,
    {_MEASUREMENT_DDL},
    PRIMARY KEY (run_id, cell_id, batch_size))""",
    """CREATE TABLE latency_samples (
    run_id VARCHAR, cell_id VARCHAR, batch_size INTEGER, iteration INTEGER, latency_ms DOUBLE)""",
]


def _results_view(variant_extra: tuple[str, ...] = (),
                  measurement_columns: tuple[str, ...] | None = None,
                  expressions: tuple[str, ...] = ()) -> str:
    extra = "".join(f"v.{name}, " for name in variant_extra)
    extra += "".join(f"{expression}, " for expression in expressions)
    if measurement_columns is None:  # as released in v2 and v3
        measurement_columns = tuple(MEASUREMENT_COLUMNS_V1) + ("niceness",)
    return f"""CREATE OR REPLACE VIEW results AS
    SELECT c.run_id, c.cell_id, c.variant_id, c.model, c.method, c.format,
           coalesce(m.precision, v.precision) AS precision, c.device, d.host,
           d.name AS device_name, c.status, c.error, v.size_bytes, v.suspect AS parity_suspect,
           -- a baseline variant is the unmodified fp32 source: what speedups are against
           (json_array_length(v.method_config) = 1
            AND v.method_config->>'$[0].kind' = 'baseline') AS is_baseline,
           r.matrix_name, r.tag, r.started_at AS run_started_at, {extra}
           {", ".join(f"m.{n}" for n in measurement_columns if n != "precision")}
    FROM cells c
    JOIN runs r ON r.run_id = c.run_id
    LEFT JOIN measurements m ON m.run_id = c.run_id AND m.cell_id = c.cell_id
    LEFT JOIN variants v ON v.variant_id = c.variant_id
    LEFT JOIN devices d ON d.device_id = c.device_id"""


# Per run, model, device and batch size: the ok cells that no other cell beats on both
# p50 latency and accuracy (top-1 on labelled data, else top-1 agreement with fp32).
PARETO_VIEW = """CREATE OR REPLACE VIEW pareto AS
    WITH r AS (SELECT *, coalesce(accuracy_top1, fidelity_top1_agreement) AS quality
               FROM results WHERE status = 'ok' AND latency_p50_ms IS NOT NULL)
    SELECT a.* FROM r a WHERE NOT EXISTS (
        SELECT 1 FROM r b
        WHERE b.run_id = a.run_id AND b.model = a.model AND b.device = a.device
          AND b.batch_size = a.batch_size
          AND b.latency_p50_ms <= a.latency_p50_ms AND b.quality >= a.quality
          AND (b.latency_p50_ms < a.latency_p50_ms OR b.quality > a.quality))"""

# The latest finished-or-running run of each matrix and tag (untagged runs form their own
# group): what dashboards and the ready-made queries read by default.
LATEST_VIEW = """CREATE OR REPLACE VIEW latest AS
    SELECT * FROM results WHERE run_id IN (
        SELECT arg_max(run_id, started_at) FROM runs GROUP BY matrix_name, coalesce(tag, ''))"""

V2 = ["ALTER TABLE measurements ADD COLUMN niceness INTEGER",  # the worker's scheduling
      _results_view(), PARETO_VIEW, LATEST_VIEW]

# What a method did to the model, beside what it costs to run: parameter count and MACs of
# the torch model that was exported, achieved weight sparsity, the artifact's size once
# compressed (what unstructured sparsity buys), and the method's own report (e.g. the
# teacher's and the student-alone accuracy next to a distilled student's).
VARIANT_COLUMNS_V3 = {"params": "BIGINT", "macs": "BIGINT", "sparsity": "DOUBLE",
                      "compressed_size_bytes": "BIGINT", "method_report": "JSON"}
V3 = [f"ALTER TABLE variants ADD COLUMN {name} {kind}"
      for name, kind in VARIANT_COLUMNS_V3.items()]
V3 += [_results_view(tuple(VARIANT_COLUMNS_V3)), PARETO_VIEW, LATEST_VIEW]

# The energy figure's idle baseline and window; the noisy flag (CV above measure.noisy_cv).
V4 = [f"ALTER TABLE measurements ADD COLUMN {name} {kind}"
      for name, kind in MEASUREMENT_COLUMNS_V4.items()]
V4 += [_results_view(tuple(VARIANT_COLUMNS_V3),
                     (*MEASUREMENT_COLUMNS_V1, "niceness", *MEASUREMENT_COLUMNS_V4)), PARETO_VIEW,
       LATEST_VIEW]

# v5 variants: the artifact's companion files and the eval pack it was built with, so a
# variant can be measured again from the database alone (`harness compare --confirm`).
VARIANT_COLUMNS_V5 = {"companions": "JSON", "eval_pack": "JSON"}
V5 = [f"ALTER TABLE measurements ADD COLUMN {name} {kind}"
      for name, kind in MEASUREMENT_COLUMNS_V5.items()]
V5 += [f"ALTER TABLE variants ADD COLUMN {name} {kind}"
       for name, kind in VARIANT_COLUMNS_V5.items()]
V5 += ["ALTER TABLE latency_samples ADD COLUMN process INTEGER DEFAULT 0",
       _results_view(tuple(VARIANT_COLUMNS_V3),
                     tuple(MEASUREMENT_COLUMNS_V1) + ("niceness",) + tuple(MEASUREMENT_COLUMNS_V4)
                     + tuple(MEASUREMENT_COLUMNS_V5)), PARETO_VIEW, LATEST_VIEW]

# v6: parity that was never measured (no device on the build host runs the format) was
# stored as passed (`ok: true`, suspect false, with a "skipped" note). It is now NULL with
# its reason; old rows are corrected, and the results view says passed / suspect /
# not checked.
PARITY_STATUS = ("CASE WHEN v.variant_id IS NULL THEN NULL "
                 "WHEN v.suspect IS NULL THEN 'not checked' "
                 "WHEN v.suspect THEN 'suspect' ELSE 'passed' END AS parity_status")
V6 = [
    """UPDATE variants SET suspect = NULL,
       parity = json_object('ok', NULL, 'suspect', NULL, 'measured', false,
                            'reason', parity->>'$.skipped')
       WHERE parity->>'$.skipped' IS NOT NULL""",
    _results_view(tuple(VARIANT_COLUMNS_V3),
                  tuple(MEASUREMENT_COLUMNS_V1) + ("niceness",) + tuple(MEASUREMENT_COLUMNS_V4)
                  + tuple(MEASUREMENT_COLUMNS_V5), (PARITY_STATUS,)),
    PARETO_VIEW, LATEST_VIEW]
V7 = [f"ALTER TABLE measurements ADD COLUMN {name} {kind}"
      for name, kind in MEASUREMENT_COLUMNS_V7.items()]
V7 += [_results_view(tuple(VARIANT_COLUMNS_V3),
                     tuple(MEASUREMENT_COLUMNS_V1) + ("niceness",)
                     + tuple(MEASUREMENT_COLUMNS_V4) + tuple(MEASUREMENT_COLUMNS_V5)
                     + tuple(MEASUREMENT_COLUMNS_V7), (PARITY_STATUS,)),
       PARETO_VIEW, LATEST_VIEW]

# Pareto per run, model, device, batch size and shape on p50 and quality (v8: the task's
# quality, not top-1 agreement, which means little on random weights fed noise).
PARETO_VIEW_V8 = """CREATE OR REPLACE VIEW pareto AS
    WITH r AS (SELECT * FROM results
               WHERE status = 'ok' AND latency_p50_ms IS NOT NULL AND quality IS NOT NULL)
    SELECT a.* FROM r a WHERE NOT EXISTS (
        SELECT 1 FROM r b
        WHERE b.run_id = a.run_id AND b.model = a.model AND b.device = a.device
          AND b.batch_size = a.batch_size AND b.shape IS NOT DISTINCT FROM a.shape
          AND b.quality_metric = a.quality_metric
          AND b.latency_p50_ms <= a.latency_p50_ms AND b.quality >= a.quality
          AND (b.latency_p50_ms < a.latency_p50_ms OR b.quality > a.quality))"""

_V8_OLD = tuple(MEASUREMENT_COLUMNS_V1) + ("niceness",) + tuple(MEASUREMENT_COLUMNS_V4) \
    + tuple(MEASUREMENT_COLUMNS_V5) + tuple(MEASUREMENT_COLUMNS_V7)
_V8_COLUMNS = {k: v for k, v in MEASUREMENT_COLUMNS.items() if k not in MEASUREMENT_COLUMNS_V10}
_V8_DDL = ",\n    ".join(f"{name} {kind}" for name, kind in _V8_COLUMNS.items())
V8 = [
    "DROP VIEW IF EXISTS latest", "DROP VIEW IF EXISTS pareto", "DROP VIEW IF EXISTS results",
    # the primary key gains the shape: a new table, the rows copied over
    f"""CREATE TABLE measurements_v8 (
    run_id VARCHAR, cell_id VARCHAR,
    {_V8_DDL},
    PRIMARY KEY (run_id, cell_id, batch_size, shape))""",
    f"""INSERT INTO measurements_v8 (run_id, cell_id, {", ".join(_V8_OLD)}, shape, quality,
        quality_metric, reference_quality, quality_threshold)
    SELECT run_id, cell_id, {", ".join(_V8_OLD)}, '',
           coalesce(accuracy_top1, fidelity_cosine_min),
           CASE WHEN accuracy_top1 IS NOT NULL THEN 'top1'
                WHEN fidelity_cosine_min IS NOT NULL THEN 'fidelity_cosine_min' END,
           CASE WHEN accuracy_top1 IS NOT NULL THEN reference_top1 END,
           CASE WHEN accuracy_top1 IS NULL AND fidelity_cosine_min IS NOT NULL THEN
               CASE precision WHEN 'fp32' THEN 0.9999 WHEN 'fp16' THEN 0.999
                              WHEN 'bf16' THEN 0.99 ELSE 0.9 END END
    FROM measurements""",
    "DROP TABLE measurements",
    "ALTER TABLE measurements_v8 RENAME TO measurements",
    "ALTER TABLE latency_samples ADD COLUMN shape VARCHAR DEFAULT ''",
    """CREATE TABLE metrics (
    run_id VARCHAR, cell_id VARCHAR, batch_size INTEGER, shape VARCHAR, name VARCHAR,
    value DOUBLE, PRIMARY KEY (run_id, cell_id, batch_size, shape, name))""",
    "ALTER TABLE variants ADD COLUMN task VARCHAR",
    "ALTER TABLE variants ADD COLUMN inputs JSON",
    _results_view(tuple(VARIANT_COLUMNS_V3) + ("task",), tuple(_V8_COLUMNS),
                  (PARITY_STATUS,)),
    PARETO_VIEW_V8, LATEST_VIEW]

# Where a sweep's time goes, from the sweep itself (benchmarks/sweep_time.py reads these):
# when its cluster was up, each cell's build task as the coordinator saw it (submitted to
# done, a cache hit included) and the agent's wall time for its measurement.
V9 = ["ALTER TABLE runs ADD COLUMN cluster_ready_at TIMESTAMP",
      "ALTER TABLE cells ADD COLUMN build_wall_s DOUBLE",
      "ALTER TABLE cells ADD COLUMN measure_wall_s DOUBLE"]

# v10: per-layer profiles (agents/probes/profile.py): one row per layer of each profiled
# (cell, batch, shape), in execution order; and roll-ups per op type and per precision.
_PROFILE_CELL = """SELECT p.*, c.model, c.method, c.format, c.device, c.variant_id,
           m.profile_total_ms FROM op_profiles p
    JOIN cells c ON c.run_id = p.run_id AND c.cell_id = p.cell_id
    JOIN measurements m ON m.run_id = p.run_id AND m.cell_id = p.cell_id
         AND m.batch_size = p.batch_size AND m.shape = p.shape"""


def _rollup_view(name: str, by: str) -> str:
    return f"""CREATE OR REPLACE VIEW {name} AS
    WITH p AS ({_PROFILE_CELL})
    SELECT run_id, cell_id, model, method, format, device, variant_id, batch_size, shape,
           coalesce({by}, 'unknown') AS {by}, count(*) AS layers, sum(time_ms) AS time_ms,
           sum(share) AS share
    FROM p GROUP BY ALL"""


V10 = [f"ALTER TABLE measurements ADD COLUMN {name} {kind}"
       for name, kind in MEASUREMENT_COLUMNS_V10.items()]
V10 += [
    """CREATE TABLE op_profiles (
    run_id VARCHAR, cell_id VARCHAR, batch_size INTEGER, shape VARCHAR, layer_order INTEGER,
    layer VARCHAR, op_type VARCHAR, exec_type VARCHAR, precision VARCHAR,
    input_shapes VARCHAR, time_ms DOUBLE, share DOUBLE,
    PRIMARY KEY (run_id, cell_id, batch_size, shape, layer_order))""",
    _results_view(tuple(VARIANT_COLUMNS_V3) + ("task",), tuple(MEASUREMENT_COLUMNS),
                  (PARITY_STATUS,)),
    PARETO_VIEW_V8, LATEST_VIEW,
    _rollup_view("op_type_profile", "op_type"),
    _rollup_view("precision_profile", "precision")]

# v11: whether the device was emulated (an agent advertising a kind it lacks, or a process
# under qemu), on every results row: best-variant picks and gates leave such rows out.
EMULATED = "coalesce(d.emulated, false) AS emulated"
V11 = [_results_view(tuple(VARIANT_COLUMNS_V3) + ("task",), tuple(MEASUREMENT_COLUMNS),
                     (PARITY_STATUS, EMULATED)),
       PARETO_VIEW_V8, LATEST_VIEW]

# v12: throughput scenarios (agents/probes/scenarios.py): one row per (cell, batch, shape,
# scenario) beside the single-stream measurement, the server search's every rate tried,
# and per variant the three answers side by side.
SCENARIO_COLUMNS = {
    "concurrency": "INTEGER", "threads_per_request": "INTEGER",
    "concurrency_source": "VARCHAR", "throughput_ips": "DOUBLE",
    "throughput_ci_low": "DOUBLE", "throughput_ci_high": "DOUBLE",
    "latency_p50_ms": "DOUBLE", "latency_p90_ms": "DOUBLE", "latency_p99_ms": "DOUBLE",
    "requests": "INTEGER", "duration_s": "DOUBLE", "stop_reason": "VARCHAR",
    "p99_bound_ms": "DOUBLE", "max_rate_qps": "DOUBLE", "p99_at_max_ms": "DOUBLE",
    "early_stop_p99_ms": "DOUBLE", "search_low_qps": "DOUBLE", "search_high_qps": "DOUBLE",
    "note": "VARCHAR", "details": "JSON"}
SERVER_RATE_COLUMNS = {
    "target_qps": "DOUBLE", "achieved_qps": "DOUBLE", "requests": "INTEGER",
    "served": "INTEGER", "latency_p50_ms": "DOUBLE", "latency_p90_ms": "DOUBLE",
    "latency_p99_ms": "DOUBLE", "early_stop_p99_ms": "DOUBLE", "met": "BOOLEAN",
    "basis": "VARCHAR"}
_KEY = "run_id VARCHAR, cell_id VARCHAR, batch_size INTEGER, shape VARCHAR"
V12 = [
    f"""CREATE TABLE scenario_results ({_KEY}, scenario VARCHAR,
    {", ".join(f"{k} {v}" for k, v in SCENARIO_COLUMNS.items())},
    PRIMARY KEY (run_id, cell_id, batch_size, shape, scenario))""",
    f"""CREATE TABLE server_rates ({_KEY}, step INTEGER,
    {", ".join(f"{k} {v}" for k, v in SERVER_RATE_COLUMNS.items())},
    PRIMARY KEY (run_id, cell_id, batch_size, shape, step))""",
    """CREATE OR REPLACE VIEW scenario_summary AS
    SELECT r.run_id, r.cell_id, r.model, r.method, r.format, r.precision, r.device,
           r.emulated, r.batch_size, r.shape,
           r.latency_p50_ms AS single_stream_p50_ms, r.throughput_ips AS single_stream_ips,
           o.throughput_ips AS offline_ips, o.concurrency AS offline_concurrency,
           o.concurrency_source AS offline_concurrency_source,
           o.latency_p99_ms AS offline_p99_ms,
           s.max_rate_qps AS server_max_qps, s.throughput_ips AS server_ips,
           s.p99_bound_ms AS server_p99_bound_ms, s.p99_at_max_ms AS server_p99_at_max_ms,
           coalesce(s.note, o.note) AS scenario_note
    FROM results r
    LEFT JOIN scenario_results o ON o.run_id = r.run_id AND o.cell_id = r.cell_id
         AND o.batch_size = r.batch_size AND o.shape = r.shape AND o.scenario = 'offline'
    LEFT JOIN scenario_results s ON s.run_id = r.run_id AND s.cell_id = r.cell_id
         AND s.batch_size = r.batch_size AND s.shape = r.shape AND s.scenario = 'server'
    WHERE r.status = 'ok' AND (o.scenario IS NOT NULL OR s.scenario IS NOT NULL)"""]

# v13: where each measurement's wall time went (agents/phases.py): worker start-up, set-up,
# load, quality pass, timed loops, profile, scenarios, the rest; seconds per phase.
V13 = ["ALTER TABLE cells ADD COLUMN measure_phases JSON"]

MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (1, "initial schema: runs, variants, devices, cells, measurements, samples", V1),
    (2, "results view with matrix, tag and baseline flag; pareto and latest views", V2),
    (3, "variant params, MACs, sparsity, compressed size and method report", V3),
    (4, "energy idle baseline and window; noisy latency flag", V4),
    (5, "host-timed p50, worker processes per cell, sampled peak RSS", V5),
    (6, "parity not measured is NULL with its reason, not passed; parity_status", V6),
    (7, "measurement warnings (int8 that may saturate on a CPU without VNNI)", V7),
    (8, "rows per shape; quality and its metric per task; metrics table; variant task and "
        "inputs", V8),
    (9, "timings of a sweep: cluster start, each cell's build task and measurement", V9),
    (10, "per-layer profiles: op_profiles, op_type_profile and precision_profile views", V10),
    (11, "results view: emulated (the device's flag) on every row", V11),
    (12, "throughput scenarios: scenario_results, server_rates, scenario_summary view", V12),
    (13, "each measurement's wall time by phase: cells.measure_phases", V13),
]
SCHEMA_VERSION = MIGRATIONS[-1][0]
