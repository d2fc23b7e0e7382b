"""`harness doctor`: the device kinds, runtimes and sensors this host has, and for every one
it lacks, why."""

from __future__ import annotations

import json

from rich.console import Console
from rich.table import Table


def _row(table: Table, name: str, entry: dict, ok_key: str) -> None:
    if ok_key in entry:
        table.add_row(name, "[green]yes[/]", str(entry[ok_key]))
    else:
        table.add_row(name, "[red]no[/]", entry.get("reason", ""))


def print_report(report: dict, console: Console) -> None:
    console.print(f"host [bold]{report['host']}[/] ({report['machine']}): {report['cpu_model']}"
                  + (f", board {report['board']}" if report["board"] else ""))
    console.print("ISA features: " + (", ".join(report["cpu_flags"]) or "none of interest"))

    kinds = Table(title="device kinds")
    for col in ("kind", "present", "detail / reason"):
        kinds.add_column(col, overflow="fold")
    for kind in report["hardware_kinds"]:
        detail = report["cpu_model"]
        if kind == "nvidia-gpu":
            detail = "; ".join(f"{g['name']} {g['memory_mb']} MB, driver {g['driver']}"
                               for g in report["gpus"])
        kinds.add_row(kind, "[green]yes[/]", detail)
    for kind, reason in report["missing_kinds"].items():
        kinds.add_row(kind, "[red]no[/]", reason)
    ov = report["openvino_devices"]
    kinds.add_row("openvino devices", "[green]yes[/]" if ov else "[red]no[/]",
                  ", ".join(f"{d['device']}: {d['name']}" for d in ov) if ov
                  else report["openvino_reason"])
    if ov and not any(d["device"].startswith(("GPU", "NPU")) for d in ov):
        kinds.add_row("intel gpu / npu", "[red]no[/]",
                      "OpenVINO lists no GPU or NPU device on this host")
    console.print(kinds)

    runtimes = Table(title="runtimes")
    for col in ("runtime", "imports", "version / reason"):
        runtimes.add_column(col, overflow="fold")
    for name, entry in report["runtimes"].items():
        _row(runtimes, name, entry, "version")
    console.print(runtimes)

    sensors = Table(title="energy sensors")
    for col in ("sensor", "readable", "counter / reason"):
        sensors.add_column(col, overflow="fold")
    for name, entry in report["sensors"].items():
        _row(sensors, name, entry, "name")
    console.print(sensors)


def run_doctor(as_json: bool, console: Console) -> int:
    from agents.devices import host_report

    report = host_report()
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report, console)
    return 0
