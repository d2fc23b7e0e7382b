"""What runs on cluster nodes, as plain functions (the coordinator makes them remote).

A build runs in the Ray worker on a `build` node; a measurement starts a fresh worker
process on the device's agent (agents.launcher), so a runtime crash costs one cell."""

from __future__ import annotations


def build_task(request) -> dict:
    from harness.build import build_variant
    return build_variant(request)


def measure_task(cell: dict, timeout_s: float) -> dict:
    from agents.launcher import run_cell
    return run_cell(cell, timeout_s)
