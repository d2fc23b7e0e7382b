"""`harness` command line. Exit codes: 0 success; 1 cells failed (sweep) or a regression
(compare); 2 bad input, with a one-paragraph message and no traceback."""

from __future__ import annotations

import argparse
import json
import sys

from harness.defaults import DEFAULT_CACHE, DEFAULT_DB
from harness.errors import InputError

# Top-level modules only the full install brings (pyproject's `full` extra): a command that
# needs one, run from an agent install, says so instead of a traceback.
FULL_INSTALL_MODULES = frozenset({
    "torch", "torchvision", "onnx", "onnxscript", "duckdb", "sklearn", "yaml", "pydantic",
    "rich", "scipy", "matplotlib", "asv", "nncf", "torchao", "litert_torch", "torch_pruning",
    "optuna", "transformers"})


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own exit code for bad flags is 2 already
        self.print_usage(sys.stderr)
        print(f"harness: error: {message}", file=sys.stderr)
        sys.exit(2)


def _console():
    from rich.console import Console
    # Logs and CI capture are not terminals: rich would fall back to 80 columns and cut
    # the tables, so give them a wide page.
    return Console(width=None if sys.stdout.isatty() else 160)


def _cmd_plan(args) -> int:
    from harness.matrix.plan_cli import run_plan
    return run_plan(args, _console)


def _cmd_sweep(args) -> int:
    from harness.sweep_cli import run_sweep_command
    return run_sweep_command(args, _console())


def _cmd_query(args) -> int:
    from harness.results.query import run_query
    return run_query(args.sql, args.db, args.format)


def _cmd_recommend(args) -> int:
    from harness.results.recommend import print_recommendations, recommend
    from harness.results.runref import resolve_run
    from harness.results.store import open_read_only

    con = open_read_only(args.db)
    try:
        run_id = resolve_run(con, args.run) if args.run else None
        rows = recommend(con, metric=args.metric, device=args.device,
                         max_accuracy_drop=args.max_accuracy_drop, batch_size=args.batch_size,
                         run_id=run_id, include_emulated=args.include_emulated,
                         scenario=args.scenario)
    finally:
        con.close()
    if not rows:
        print("no measured cells match (check --device and --batch-size)", file=sys.stderr)
        return 0
    print_recommendations(rows, args.metric, args.max_accuracy_drop, _console())
    return 0


def _cmd_report(args) -> int:
    from pathlib import Path

    from harness.results.report import write_report
    from harness.results.runref import resolve_run
    from harness.results.store import open_read_only

    con = open_read_only(args.db)
    try:
        if args.history:
            from harness.results.history_report import write_history_report
            if args.run:
                raise InputError("--history covers runs by tag; give --tag, not a run",
                                 field="RUN", allowed="harness report --history [--tag TAG]")
            path = write_history_report(con, Path(args.out or "results/history.html"),
                                        tag=args.tag, db=args.db)
        else:
            run_id = resolve_run(con, args.run) if args.run else None
            out = Path(args.out or f"results/report.{'md' if args.format == 'md' else 'html'}")
            out.parent.mkdir(parents=True, exist_ok=True)
            path = write_report(con, run_id, out, fmt=args.format)
    finally:
        con.close()
    print(f"report written to {path}")
    return 0


def _cmd_history(args) -> int:
    from harness.results.history_cli import run_history
    return run_history(args, _console())


def _cmd_profile(args) -> int:
    from harness.results.profile_cli import run_profile
    return run_profile(args, _console())


def _cmd_compare(args) -> int:
    from harness.results.compare import Thresholds, run_compare

    thresholds = Thresholds(p_value=args.p_value, min_latency_effect=args.min_effect,
                            max_accuracy_drop_points=args.max_accuracy_drop,
                            max_memory_growth=args.max_memory_growth)
    return run_compare(args.db, args.baseline, args.candidate, fmt=args.format,
                       thresholds=thresholds, confirm_blocks=args.confirm,
                       history_runs=args.history, include_emulated=args.include_emulated)


def _cmd_cache_list(args) -> int:
    from harness.build.cache_cli import list_command
    return list_command(args, _console())


def _cmd_cache_prune(args) -> int:
    from harness.build.cache_cli import prune_command
    return prune_command(args, _console())


def _cmd_doctor(args) -> int:
    from harness.cluster.doctor import run_doctor
    return run_doctor(args.json, _console())


def _cmd_agent_start(args) -> int:
    from harness.cluster.node import start_agent
    return start_agent(address=args.address, head=args.head, as_kind=args.as_kind,
                       build=args.build, name=args.name, port=args.port, node_ip=args.node_ip,
                       num_cpus=args.num_cpus, dry_run=args.dry_run,
                       out=lambda line: print(line, flush=True))


def _cmd_agents(args) -> int:
    from rich.table import Table

    from harness.cluster.node import list_agents

    agents = list_agents(args.address)
    if args.json:
        print(json.dumps(agents, indent=2))
        return 0
    table = Table(title=f"{len(agents)} nodes at {args.address}")
    for col in ("host", "kinds", "build", "emulated", "cpu model", "gpu", "runtimes",
                "node id"):
        table.add_column(col, overflow="fold")
    for a in agents:
        table.add_row(a["host"] or "", ", ".join(a["kinds"]) or "-", "yes" if a["build"] else "",
                      "yes" if a["emulated"] else "", a["cpu_model"] or "", a["gpu_name"] or "",
                      ", ".join(f"{k} {v}" for k, v in a["runtimes"].items()),
                      a["node_id"][:12])
    _console().print(table)
    return 0


def _nonnegative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _blocks(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number of blocks, got {text!r}")
    if not 2 <= value <= 400:
        raise argparse.ArgumentTypeError(f"must be between 2 and 400, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="harness", description="Model-optimization benchmarking harness")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("plan", help="expand a matrix: cells to run, skipped cells and why")
    p.add_argument("matrix")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--all", action="store_true",
                   help="list every cell and every skipped cell (default: grouped)")
    p.set_defaults(func=_cmd_plan)

    p = sub.add_parser("sweep", help="build and measure every cell of a matrix")
    p.add_argument("matrix")
    p.add_argument("--db", default=DEFAULT_DB, help=f"results database (default {DEFAULT_DB})")
    p.add_argument("--address", help="HOST:PORT of a running Ray cluster (default: embedded)")
    p.add_argument("--tag", help="label for this run, e.g. nightly")
    p.add_argument("--cache", default=DEFAULT_CACHE,
                   help=f"artifact cache folder (default {DEFAULT_CACHE})")
    p.add_argument("--resume", metavar="RUN_ID",
                   help="complete an interrupted run: measure only its cells without a result")
    p.add_argument("--strict", action="store_true",
                   help="exit 1 also when a planned cell had no agent of its device "
                        "(unavailable): for nightly gates")
    p.add_argument("--verbose", action="store_true",
                   help="show Ray's own INFO and WARNING lines (start-up, token auth)")
    p.set_defaults(func=_cmd_sweep)

    p = sub.add_parser("query", help="run read-only SQL on the results database")
    p.add_argument("sql")
    p.add_argument("--db", default=DEFAULT_DB)
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    p.set_defaults(func=_cmd_query)

    p = sub.add_parser("report", help="self-contained HTML report with plots (or Markdown)")
    p.add_argument("run", nargs="?", help="run id or tag:NAME[~N] (default: the latest run)")
    p.add_argument("--db", default=DEFAULT_DB)
    p.add_argument("--out", help="output file (default results/report.html or .md)")
    p.add_argument("--format", choices=("html", "md"), default="html")
    p.add_argument("--history", action="store_true",
                   help="the history page instead: each cell over the last 30 runs, change "
                        "points marked (default out results/history.html)")
    p.add_argument("--tag", help="with --history: only runs with this tag")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("history", help="each cell's figure over the last runs, with change "
                                       "points and what changed at them")
    p.add_argument("--db", default=DEFAULT_DB)
    p.add_argument("--tag", help="only runs with this tag (nightly runs: --tag nightly)")
    p.add_argument("--model")
    p.add_argument("--method")
    p.add_argument("--format", dest="target_format", metavar="FORMAT",
                   help="target format (onnx, openvino, tflite, tensorrt, torch)")
    p.add_argument("--device")
    p.add_argument("--metric", choices=("p50", "quality", "size", "memory", "throughput"),
                   default="p50")
    p.add_argument("--last", type=int, default=30, help="runs to look at (default 30)")
    p.add_argument("--regressed", action="store_true",
                   help="only cells whose latest level is worse than the one before")
    p.add_argument("--min-effect", type=_nonnegative, default=0.10,
                   help="smallest relative change called a step (default 0.10)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--include-emulated", action="store_true",
                   help="also use cells measured on an emulated device (left out by default: "
                        "their timings are the emulating host's)")
    p.set_defaults(func=_cmd_history)

    p = sub.add_parser("profile", help="per-layer profile of a cell (hotspots first), two "
                                       "variants side by side, or a run's profiled cells")
    p.add_argument("target", metavar="CELL_OR_RUN",
                   help="a cell id (digits-cnn/int8/onnx/intel-cpu) or a run id / tag:NAME")
    p.add_argument("--db", default=DEFAULT_DB)
    p.add_argument("--run", help="the run of the cell (default: the latest that profiled it)")
    p.add_argument("--batch", type=int, help="batch size (default: the smallest profiled)")
    p.add_argument("--shape", help="shape label such as seq=128 (default: the first)")
    p.add_argument("--by", choices=("layer", "op_type", "precision"), default="layer")
    p.add_argument("--top", type=int, help=f"rows shown (default {15} for layers; with "
                                           "--diff, the N largest differences)")
    p.add_argument("--diff", metavar="OTHER_CELL",
                   help="line this cell up layer by layer with another variant")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(func=_cmd_profile)

    p = sub.add_parser("compare", help="regression gate between two runs (exit 1 on regression)")
    p.add_argument("baseline", help="run id, tag:NAME (latest with that tag) or tag:NAME~N")
    p.add_argument("candidate", help="run id, tag:NAME or tag:NAME~N")
    p.add_argument("--db", default=DEFAULT_DB)
    p.add_argument("--format", choices=("md", "json"), default="md")
    p.add_argument("--p-value", type=_nonnegative, default=0.002,
                   help="Mann-Whitney U significance threshold (default 0.002)")
    p.add_argument("--min-effect", type=_nonnegative, default=0.10,
                   help="minimum relative p50 change to call (default 0.10 = 10%%)")
    p.add_argument("--max-accuracy-drop", type=_nonnegative, default=0.5,
                   help="accuracy drop in points that is a regression (default 0.5)")
    p.add_argument("--max-memory-growth", type=_nonnegative, default=0.10,
                   help="relative peak-RSS growth that is a regression (default 0.10)")
    p.add_argument("--confirm", type=_blocks, nargs="?", const=20, default=0,
                   metavar="BLOCKS",
                   help="re-measure each latency finding here: baseline and candidate "
                        "artifacts in one process, alternating BLOCKS blocks of 0.25 s each "
                        "(default 20); keep only findings that reproduce (for hosts whose "
                        "speed drifts between runs)")
    p.add_argument("--history", type=int, default=0, metavar="N",
                   help="read each latency finding against the cell's N runs before the "
                        "candidate (of its tag): a new step, a trend it continues, or inside "
                        "the cell's usual spread")
    p.add_argument("--include-emulated", action="store_true",
                   help="also use cells measured on an emulated device (left out by default: "
                        "their timings are the emulating host's)")
    p.set_defaults(func=_cmd_compare)

    p = sub.add_parser("recommend", help="what to ship per model and device")
    p.add_argument("--db", default=DEFAULT_DB)
    from agents.devices import DEVICE_KINDS
    p.add_argument("--device", choices=DEVICE_KINDS)
    p.add_argument("--max-accuracy-drop", type=_nonnegative, default=1.0,
                   help="accuracy budget in points against the fp32 source (default 1.0)")
    p.add_argument("--metric", choices=("p50", "size", "energy", "throughput"), default="p50")
    p.add_argument("--scenario", choices=("single_stream", "offline", "server"),
                   help="with --metric throughput: whose inferences/s (default offline; "
                        "server: the highest rate under its p99 bound)")
    p.add_argument("--batch-size", type=int, help="default: the smallest batch measured")
    p.add_argument("--run", help="run id or tag:NAME[~N] (default: the latest of each matrix/tag)")
    p.add_argument("--include-emulated", action="store_true",
                   help="also use cells measured on an emulated device (left out by default: "
                        "their timings are the emulating host's)")
    p.set_defaults(func=_cmd_recommend)

    p = sub.add_parser("cache", help="inspect and prune the artifact cache")
    cache_sub = p.add_subparsers(dest="cache_command", required=True, parser_class=_Parser)
    c = cache_sub.add_parser("list", help="every cached variant (ok or corrupt), model and "
                                          "eval pack, with size and last use")
    c.add_argument("--cache", default=DEFAULT_CACHE,
                   help=f"artifact cache folder (default {DEFAULT_CACHE})")
    c.add_argument("--format", choices=("table", "json"), default="table")
    c.set_defaults(func=_cmd_cache_list)
    c = cache_sub.add_parser("prune", help="remove whole variant folders: unused for N days "
                                           "and/or corrupt (plus builds left half-way)")
    c.add_argument("--cache", default=DEFAULT_CACHE,
                   help=f"artifact cache folder (default {DEFAULT_CACHE})")
    c.add_argument("--older-than-days", type=_nonnegative, metavar="N",
                   help="variants last used more than N days ago")
    c.add_argument("--corrupt", action="store_true",
                   help="variants whose artifact is missing or does not match its sha256 "
                        "(with --older-than-days: only those that are also old)")
    c.add_argument("--dry-run", action="store_true", help="list what would go; delete nothing")
    c.set_defaults(func=_cmd_cache_prune)

    p = sub.add_parser("doctor", help="device kinds, runtimes and energy sensors of this host, "
                                      "and why any are missing")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_cmd_doctor)

    p = sub.add_parser("agent", help="run this host as a device agent of a Ray cluster")
    agent_sub = p.add_subparsers(dest="agent_command", required=True, parser_class=_Parser)
    a = agent_sub.add_parser("start", help="start a Ray node (real `ray start`, in the "
                                           "foreground until Ctrl-C) advertising this host's "
                                           "devices")
    a.add_argument("--address", help="HOST:PORT of the cluster's head to join")
    a.add_argument("--head", action="store_true",
                   help="start a new cluster here (the head is also a build node)")
    a.add_argument("--as", dest="as_kind", metavar="KIND",
                   help="advertise this device kind instead of the detected ones (testing); "
                        "its measurements are stored as emulated")
    a.add_argument("--build", action="store_true", help="also be a build node")
    a.add_argument("--name", help="agent name stored as the device's host (default: hostname)")
    a.add_argument("--port", type=int, default=6379, help="head's GCS port (default 6379)")
    a.add_argument("--node-ip", help="address other nodes reach this one at (private network)")
    a.add_argument("--num-cpus", type=int, help="CPUs Ray may schedule here (default: all)")
    a.add_argument("--dry-run", action="store_true",
                   help="print what would be advertised and the `ray start` command only")
    a.set_defaults(func=_cmd_agent_start)

    p = sub.add_parser("agents", help="list the agents (nodes) of a Ray cluster")
    p.add_argument("--address", required=True, help="HOST:PORT of the cluster's head")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_cmd_agents)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except InputError as exc:
        print(f"harness {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").split(".")[0]
        if missing not in FULL_INSTALL_MODULES:
            raise
        print(f"harness {args.command}: error: needs the full install ({missing} is not "
              "installed here; an agent install, pip install 'harness[agent]', runs only "
              "`harness agent start` and `python -m agents.worker`): pip install "
              "'harness[full]'", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
