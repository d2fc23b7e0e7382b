"""Writing the throughput scenarios of a measurement row (agents/probes/scenarios.py) into
scenario_results and server_rates (schema v12), in the cell's transaction."""

from __future__ import annotations

import json

import duckdb

from harness.results.schema import SCENARIO_COLUMNS, SERVER_RATE_COLUMNS


def write_scenarios(con: duckdb.DuckDBPyConnection, run_id: str, cell_id: str,
                    row: dict) -> None:
    key = [run_id, cell_id, row["batch_size"], row.get("shape") or ""]
    where = "run_id = ? AND cell_id = ? AND batch_size = ? AND shape = ?"
    con.execute(f"DELETE FROM scenario_results WHERE {where}", key)
    con.execute(f"DELETE FROM server_rates WHERE {where}", key)
    for result in row.get("scenarios") or ():
        values = {name: result.get(name) for name in SCENARIO_COLUMNS}
        values["details"] = json.dumps(result.get("details") or {})
        con.execute(
            f"INSERT INTO scenario_results (run_id, cell_id, batch_size, shape, scenario, "
            f"{', '.join(values)}) VALUES ({', '.join('?' * (5 + len(values)))})",
            [*key, result["scenario"], *values.values()])
        for step in result.get("curve") or ():
            con.execute(
                f"INSERT INTO server_rates (run_id, cell_id, batch_size, shape, step, "
                f"{', '.join(SERVER_RATE_COLUMNS)}) VALUES "
                f"({', '.join('?' * (5 + len(SERVER_RATE_COLUMNS)))})",
                [*key, step["step"], *(step.get(name) for name in SERVER_RATE_COLUMNS)])
