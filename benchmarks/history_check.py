"""Nightly history, end to end: real sweeps of matrix/nightly.yaml into one database, one
real change between two of them, and `harness history --regressed` must name the cell that
change slowed, at the run it happened, with what changed, and no other cell.

The runs use nightly.yaml's cells with shorter windows (--processes, --seconds) so eight
sweeps fit in a session. After --before runs, the int8 method's activations switch from
uint8 to int8 (`scheme.activation_dtype: int8`): ONNX Runtime then runs S8S8 kernels, which
measured 2.6x slower on mobilenet_v3_small's int8 model here and no slower on the digits
CNN's; torch refuses int8 activations at plan time, so its int8 cells stop being measured.
So exactly one cell should step: mobilenet_v3_small/int8/onnx. The digits CNN's int8 ONNX
variant changes too (a new artifact) without getting slower, and must not be named.

    .venv/bin/python benchmarks/history_check.py --db /tmp/nightly.duckdb \\
        [--before 4] [--after 4] [--processes 2] [--seconds 1.5] [--expect CELL]

With an existing --db, only the missing runs are swept (a database of 8 tagged runs is
reused as it is). Prints `harness history --tag nightly` and `--regressed`, writes the
history page beside the database, and exits 1 unless --regressed names exactly --expect.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
EXPECT = "mobilenet_v3_small/int8/onnx/intel-cpu"


def nightly(processes: int, seconds: float, changed: bool) -> dict:
    matrix = yaml.safe_load((REPO / "matrix" / "nightly.yaml").read_text())
    matrix["measure"] |= {"processes": processes, "min_seconds": seconds,
                          "max_seconds": max(seconds * 3, seconds + 1), "warmup_s": 0.5,
                          "min_iterations": 100}
    if changed:
        for method in matrix["methods"]:
            if method["name"] == "int8":
                method["scheme"] = dict(method.get("scheme") or {}, activation_dtype="int8")
    return matrix


def harness(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    out = subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=REPO,
                         capture_output=True, text=True)
    if check and out.returncode not in (0, 1):
        raise SystemExit(f"harness {' '.join(args)} failed ({out.returncode}):\n"
                         f"{out.stdout[-3000:]}{out.stderr[-3000:]}")
    return out


def tagged_runs(db: Path) -> int:
    if not db.is_file():
        return 0
    out = harness("query", "select count(*) as n from runs where tag = 'nightly' and "
                  "status not in ('running', 'interrupted')", "--db", str(db), "--format",
                  "json")
    return json.loads(out.stdout)[0]["n"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--before", type=int, default=4, help="runs before the change")
    parser.add_argument("--after", type=int, default=4, help="runs after the change")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=1.5, help="measure.min_seconds")
    parser.add_argument("--expect", default=EXPECT)
    args = parser.parse_args(argv)
    db = Path(args.db)

    folder = Path(tempfile.mkdtemp(prefix="nightly-"))
    for k in range(tagged_runs(db), args.before + args.after):
        changed = k >= args.before
        path = folder / f"nightly{'-changed' if changed else ''}.yaml"
        path.write_text(yaml.safe_dump(nightly(args.processes, args.seconds, changed)))
        out = harness("sweep", str(path), "--db", str(db), "--tag", "nightly")
        last = [ln for ln in out.stdout.splitlines() if ln.startswith("run ")]
        print(f"sweep {k + 1}{' (changed)' if changed else ''}: "
              f"{last[-1] if last else out.stdout[-300:]}", flush=True)

    print(harness("history", "--tag", "nightly", "--db", str(db)).stdout)
    regressed = harness("history", "--tag", "nightly", "--regressed", "--db", str(db))
    print(regressed.stdout)
    page = db.with_name(db.stem + ".history.html")
    print(harness("report", "--history", "--tag", "nightly", "--db", str(db), "--out",
                  str(page)).stdout.strip())
    cells = json.loads(harness("history", "--tag", "nightly", "--regressed", "--json",
                               "--db", str(db)).stdout)
    named = sorted(f"{c['model']}/{c['method']}/{c['format']}/{c['device']}" for c in cells)
    print(f"--regressed names: {named or 'nothing'}; expected: [{args.expect!r}]")
    return 0 if named == [args.expect] else 1


if __name__ == "__main__":
    sys.exit(main())
