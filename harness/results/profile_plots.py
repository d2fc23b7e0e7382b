"""The report's profile figure: per model and device, one horizontal bar per variant, its
profiled run split by op type as shares of the run (variants of one model differ by 100x
in time, so bars of milliseconds would hide most of them), with the run's milliseconds and
its share in int8 kernels written at its end.

Plain rows in (the op_type_profile view's columns), PNG bytes out, like plots.py."""

from __future__ import annotations

from collections import defaultdict

from matplotlib.figure import Figure
from matplotlib.patches import Patch

from harness.results.plots import PALETTE, _message, _png

MAX_OP_TYPES = 8  # the rest of the op types are one grey "other" segment
OTHER = "other"


def op_type_bars(variants: list[dict], title: str) -> bytes:
    """variants: [{"label", "op_types": {op_type: ms}, "int8_share", "note"}]."""
    measured = [v for v in variants if v["op_types"]]
    if not measured:
        return _message("no variant of this model has a per-layer profile", title)
    totals: dict[str, float] = defaultdict(float)
    for v in measured:
        for op, ms in v["op_types"].items():
            totals[op] += ms / max(sum(v["op_types"].values()), 1e-12)  # by share: each
    kept = sorted(totals, key=lambda op: -totals[op])[:MAX_OP_TYPES]  # variant counts once
    colour = {op: PALETTE[i % len(PALETTE)] for i, op in enumerate(kept)} | {OTHER: "#c8c8c8"}
    fig = Figure(figsize=(10, 0.9 + 0.42 * len(measured)), layout="constrained")
    ax = fig.subplots()
    labels = []
    for y, v in enumerate(measured):
        left = 0.0
        total = sum(v["op_types"].values()) or 1.0
        parts = defaultdict(float)
        for op, ms in v["op_types"].items():
            parts[op if op in kept else OTHER] += ms / total
        for op in kept + [OTHER]:
            if parts.get(op):
                ax.barh(y, parts[op], left=left, color=colour[op], height=0.7,
                        edgecolor="white", linewidth=0.5)
                left += parts[op]
        note = f"  {total:.3g} ms" + (f", {v['int8_share']:.0%} int8"
                                      if v.get("int8_share") else "")
        ax.text(1.0, y, note, va="center", fontsize=8, color="#333333")
        labels.append(v["label"])
    ax.set_yticks(range(len(measured)), labels, fontsize=9)
    ax.set_ylim(len(measured) - 0.5, -0.5)  # first variant on top, no empty band
    ax.set_xlim(0, 1.36)  # room for the ms and int8 notes after 100%
    ax.set_xticks([0, 0.25, 0.5, 0.75, 1.0], ["0", "25%", "50%", "75%", "100%"])
    ax.set_xlabel("share of the profiled run (median per layer over the runs), by op type; "
                  "ms per run at the end", fontsize=9)
    ax.grid(True, axis="x", alpha=0.25)
    ax.set_title(title, fontsize=11)
    handles = [Patch(color=colour[op], label=op) for op in kept + [OTHER] if op in colour
               and any(op == OTHER or op in v["op_types"] for v in measured)]
    fig.legend(handles=handles, loc="outside right upper", fontsize=8, frameon=False)
    return _png(fig)
