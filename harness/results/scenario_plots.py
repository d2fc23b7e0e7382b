"""The report's latency-vs-throughput figure: per model and device, each variant a curve
through the rates its server search tried (achieved inferences/s, p99 latency from the
scheduled arrival), its offline result as the end point, and the p99 bound as a line.

Plain rows in, PNG bytes out, like plots.py."""

from __future__ import annotations

from matplotlib.figure import Figure

from harness.results.plots import MARKERS, PALETTE, _message, _png


def latency_vs_throughput(variants: list[dict], title: str,
                          bound_ms: float | None) -> bytes:
    """variants: [{"label", "curve": [(ips, p99_ms, met)], "offline": (ips, p99_ms) | None}]."""
    drawn = [v for v in variants if v["curve"] or v["offline"]]
    if not drawn:
        return _message("no variant of this model has an offline or server result", title)
    fig = Figure(figsize=(9, 5), layout="constrained")
    ax = fig.subplots()
    for i, v in enumerate(drawn):
        colour, marker = PALETTE[i % len(PALETTE)], MARKERS[i % len(MARKERS)]
        points = sorted((ips, p99) for ips, p99, _ in v["curve"] if p99 is not None
                        and p99 != float("inf"))
        if points:
            ax.plot([p[0] for p in points], [p[1] for p in points], color=colour,
                    marker=marker, label=v["label"])
            missed = [(ips, p99) for ips, p99, met in v["curve"] if not met and p99 is not None
                      and p99 != float("inf")]
            ax.scatter([m[0] for m in missed], [m[1] for m in missed], facecolors="none",
                       edgecolors=colour, s=110, linewidths=1.2)
        if v["offline"]:
            ips, p99 = v["offline"]
            ax.scatter([ips], [p99], color=colour, marker="*", s=220, edgecolors="black",
                       linewidths=0.6, zorder=3, label=None if points else v["label"])
    if bound_ms:
        ax.axhline(bound_ms, color="#555555", linestyle="--", linewidth=1)
        ax.annotate(f"p99 bound {bound_ms:g} ms", (0.01, bound_ms), xycoords=("axes fraction",
                                                                            "data"),
                    va="bottom", fontsize=9, color="#555555")
    ax.set_yscale("log")
    ax.set_xlabel("inferences / s (server: achieved at each rate tried; star: offline)")
    ax.set_ylabel("p99 latency, ms (from scheduled arrival; log)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    return _png(fig)
