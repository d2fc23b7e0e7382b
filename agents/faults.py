"""Fault injection for tests and drills: make the worker of a chosen cell crash, hang or run
out of memory the way a broken runtime would, to check that only that cell pays for it.

    HARNESS_INJECT_FAULT='{"digits-cnn/fp32/onnx/intel-cpu": "segfault"}'

Faults: segfault (a real SIGSEGV, reading address 0), hang (sleeps past any sane timeout),
oom (allocates and touches memory until something kills it), sleep:SECONDS (then carries on),
exit:CODE. Off unless the variable is set; read by the worker only."""

from __future__ import annotations

import json
import os
import sys
import time

FAULT_ENV = "HARNESS_INJECT_FAULT"
HANG_S = 3600.0             # "hang" still ends, an hour later, if nothing kills it
OOM_CAP_MB = 64 * 1024      # "oom" stops growing here even if no watchdog stops it
OOM_CHUNK_MB = 32


def fault_for(cell_id: str) -> str | None:
    text = os.environ.get(FAULT_ENV)
    if not text:
        return None
    faults = json.loads(text)
    return faults.get(cell_id) or faults.get("*")


def inject(cell_id: str) -> None:
    fault = fault_for(cell_id)
    if not fault:
        return
    print(f"injecting fault {fault!r} into {cell_id}", file=sys.stderr, flush=True)
    name, _, arg = fault.partition(":")
    if name == "segfault":
        import ctypes
        ctypes.string_at(0)
    elif name == "hang":
        time.sleep(HANG_S)
    elif name == "oom":
        import numpy as np
        blocks = []
        while len(blocks) * OOM_CHUNK_MB < OOM_CAP_MB:
            blocks.append(np.ones(OOM_CHUNK_MB * 2**20, dtype=np.uint8))  # touched pages
    elif name == "sleep":
        time.sleep(float(arg))
    elif name == "exit":
        os._exit(int(arg or 1))
    else:
        raise ValueError(f"unknown fault {fault!r} in ${FAULT_ENV}")
