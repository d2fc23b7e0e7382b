"""Figures for `harness report`, as PNG bytes.

Every builder takes plain rows (mappings with the `results` view's column names, or dicts
built from a DuckDB fetch), never a connection, so it can be tested on hand-made data.
Figures are drawn on matplotlib's Agg canvas directly: no pyplot, so no display is needed,
no global figure registry leaks memory across calls, and a host's MPLBACKEND is ignored.
Edge cases (no ok cell, no baseline, one point) give a figure that says so, never an error.
"""

from __future__ import annotations

import io
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping

import matplotlib

matplotlib.use("Agg")  # no display anywhere the report is rendered (CI, servers)

import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
FIDELITY_LABEL = "cosine to the fp32 outputs (fidelity)"

Row = Mapping[str, object]


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def _message(text: str, title: str) -> bytes:
    """A small figure carrying a sentence, for the cases with nothing to draw."""
    fig = Figure(figsize=(8, 1.6))
    fig.text(0.5, 0.62, title, ha="center", va="center", fontsize=12, weight="bold")
    fig.text(0.5, 0.3, text, ha="center", va="center", fontsize=11, color="#555555")
    return _png(fig)


def quality(row: Row) -> tuple[float | None, bool]:
    """(value, labelled): the row's quality per its task (top-1 on labelled data, else the
    cosine of its outputs to the fp32 source's)."""
    if row.get("quality") is None:
        return None, False
    return float(row["quality"]), row.get("quality_threshold") is None


def _ok(rows: Iterable[Row]) -> list[Row]:
    return [r for r in rows if r.get("status", "ok") == "ok"
            and r.get("latency_p50_ms") is not None and r["latency_p50_ms"] > 0]


def _smallest_batch(rows: list[Row]) -> tuple[list[Row], int | None]:
    if not rows:
        return [], None
    batch = min(r["batch_size"] for r in rows)
    return [r for r in rows if r["batch_size"] == batch], batch


def _order(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))  # first-seen order: the matrix's order, not a-z


def _styles(rows: list[Row]) -> tuple[dict, dict, list[Line2D]]:
    """One colour per method and one marker per format, the same in every panel."""
    methods = _order(r["method"] for r in rows)
    formats = _order(r["format"] for r in rows)
    colour = {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(methods)}
    marker = {f: MARKERS[i % len(MARKERS)] for i, f in enumerate(formats)}
    handles = [Line2D([], [], ls="", marker="o", color=colour[m], label=f"method {m}")
               for m in methods]
    handles += [Line2D([], [], ls="", marker=marker[f], color="#444444", label=f"format {f}")
                for f in formats]
    return colour, marker, handles


def _grid(n: int, ncols: int, panel_w: float, panel_h: float, extra_w: float = 0):
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    # At least 8 in wide: the suptitle and the legend must fit beside a single panel.
    fig = Figure(figsize=(max(8.0, panel_w * ncols + extra_w), panel_h * nrows + 0.6),
                 layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes


class _Percent(matplotlib.ticker.PercentFormatter):
    """The headroom above 100% only keeps markers whole; it gets no tick label."""

    def __call__(self, x, pos=None):
        return "" if x > 1.0 + 1e-9 else super().__call__(x, pos)


def _quality_axis(ax, values: list[float], labelled: bool) -> None:
    """Percent axis padded around the data but not far past 100%: matplotlib's automatic
    limits around a single value would show an impossible 104% accuracy."""
    lo, hi = min(values), max(values)
    pad = max(0.02, 0.15 * (hi - lo))
    ax.set_ylim(max(0.0, lo - pad), min(hi + pad, 1.0 + pad / 3))
    ax.set_ylabel("top-1 accuracy" if labelled else FIDELITY_LABEL, fontsize=9)
    ax.yaxis.set_major_formatter(_Percent(1.0, decimals=None))
    ax.grid(True, which="both", alpha=0.25)


def _log_axis(ax, axis: str = "x") -> None:
    """Log scale with plain-number labels (0.2, 0.5, 1, 2) chosen by the span: the default
    minor labels (2x10^-1 ...) print over each other when the data spans under a decade."""
    getattr(ax, f"set_{axis}scale")("log")
    lo, hi = getattr(ax, f"get_{axis}lim")()
    decades = math.log10(hi / lo) if lo > 0 else 10
    subs = (1, 2, 3, 5) if decades < 1 else (1, 2, 5) if decades <= 2.5 else (1.0,)
    target = getattr(ax, f"{axis}axis")
    target.set_major_locator(matplotlib.ticker.LogLocator(subs=subs))
    target.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    target.set_minor_locator(matplotlib.ticker.LogLocator(subs="auto"))
    target.set_minor_formatter(matplotlib.ticker.NullFormatter())


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both lower latency and higher quality
    (the rule of the `pareto` view), in order of increasing latency."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], -math.inf
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def pareto_plot(rows: Iterable[Row]) -> bytes:
    """p50 latency (log x) against quality at the smallest batch size; one panel per model
    and device, the Pareto front drawn as a step line with its cells named."""
    rows, batch = _smallest_batch([r for r in _ok(rows) if quality(r)[0] is not None])
    if not rows:
        return _message("no ok cell with a latency and an accuracy in this run", "Pareto")
    colour, marker, handles = _styles(rows)
    panels = defaultdict(list)
    for r in rows:
        model = r["model"] + (f" ({r['shape']})" if r.get("shape") else "")
        panels[(r["device"], model)].append(r)
    fig, axes = _grid(len(panels), 3, 4.6, 3.6, extra_w=1.8)
    for ax, ((device, model), cell_rows) in zip(axes, panels.items()):
        pts = [(float(r["latency_p50_ms"]), quality(r)[0]) for r in cell_rows]
        for r, (x, y) in zip(cell_rows, pts):
            ax.scatter(x, y, color=colour[r["method"]], marker=marker[r["format"]], s=46,
                       zorder=3, edgecolors="white", linewidths=0.6)
        front = pareto_front(pts)
        ax.step([pts[i][0] for i in front], [pts[i][1] for i in front], where="post",
                color="#222222", lw=1.2, alpha=0.6, zorder=2)
        ax.set_xscale("log")
        ax.margins(x=0.25)
        _log_axis(ax)
        ax.set_xlabel("p50 latency, ms (log)", fontsize=9)
        _quality_axis(ax, [y for _, y in pts], any(quality(r)[1] for r in cell_rows))
        (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
        for k, i in enumerate(front):
            r, (x, y) = cell_rows[i], pts[i]
            ax.scatter(x, y, s=150, facecolors="none", edgecolors="#222222", zorder=4)
            # Labels go inwards from the panel's edges (no clipping, no overlap with the
            # title), and alternate up/down so neighbouring front points stay readable.
            right = math.log(x / x0) / math.log(x1 / x0) > 0.6
            up = (y - y0) / (y1 - y0) < 0.85 and (k % 2 == 0 or (y - y0) / (y1 - y0) < 0.15)
            ax.annotate(f"{r['model']}/{r['method']}/{r['format']}", (x, y), fontsize=7.5,
                        xytext=(-8 if right else 8, 8 if up else -8),
                        textcoords="offset points", ha="right" if right else "left",
                        va="bottom" if up else "top",
                        bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none",
                              "alpha": 0.8}, zorder=5)
        ax.set_title(f"{model} on {device}", fontsize=10)
    fig.suptitle(f"Latency vs accuracy, batch {batch} (circled: Pareto front)", fontsize=12)
    fig.legend(handles=handles, loc="outside right upper", fontsize=8, frameon=False)
    return _png(fig)


def size_plot(rows: Iterable[Row]) -> bytes:
    """Artifact size (MB, log x) against quality at the smallest batch size, per model."""
    rows, batch = _smallest_batch([r for r in _ok(rows) if quality(r)[0] is not None
                                   and r.get("size_bytes")])
    if not rows:
        return _message("no ok cell with an artifact size and an accuracy", "Size vs accuracy")
    colour, marker, handles = _styles(rows)
    panels = defaultdict(list)
    for r in rows:
        panels[r["model"]].append(r)
    fig, axes = _grid(len(panels), 3, 4.6, 3.4, extra_w=1.8)
    for ax, (model, cell_rows) in zip(axes, panels.items()):
        for r in cell_rows:
            ax.scatter(r["size_bytes"] / 2**20, quality(r)[0], color=colour[r["method"]],
                       marker=marker[r["format"]], s=46, edgecolors="white", linewidths=0.6,
                       zorder=3)
        ax.set_xscale("log")
        ax.margins(x=0.3)
        _log_axis(ax)
        ax.set_xlabel("artifact size, MB (log)", fontsize=9)
        _quality_axis(ax, [quality(r)[0] for r in cell_rows],
                      any(quality(r)[1] for r in cell_rows))
        ax.set_title(model, fontsize=10)
    fig.suptitle(f"Size vs accuracy, batch {batch}", fontsize=12)
    fig.legend(handles=handles, loc="outside right upper", fontsize=8, frameon=False)
    return _png(fig)


def speedup_table(rows: Iterable[Row], baselines: Iterable[str]) -> dict:
    """{(device, batch): {(method, format): geometric mean over models of baseline p50 /
    cell p50}}, the baseline being the fastest baseline-method cell of the same model,
    format, device and batch size. Pairs without a baseline cell are left out."""
    baselines = set(baselines)
    rows = _ok(rows)
    base = {}
    for r in rows:
        if r["method"] in baselines:
            key = (r["model"], r["format"], r["device"], r["batch_size"])
            base[key] = min(base.get(key, math.inf), float(r["latency_p50_ms"]))
    logs = defaultdict(lambda: defaultdict(list))
    for r in rows:
        b = base.get((r["model"], r["format"], r["device"], r["batch_size"]))
        if b is not None:
            logs[(r["device"], r["batch_size"])][(r["method"], r["format"])].append(
                math.log(b / float(r["latency_p50_ms"])))
    return {panel: {k: math.exp(sum(v) / len(v)) for k, v in cells.items()}
            for panel, cells in sorted(logs.items())}


def speedup_heatmap(rows: Iterable[Row], baselines: Iterable[str]) -> bytes:
    """Method x format per device and batch size, coloured on a log scale centred on 1.0."""
    rows, baselines = _ok(rows), list(baselines)
    table = speedup_table(rows, baselines)
    if not table:
        why = ("no baseline method in this run" if not baselines else
               f"no ok cell of the baseline method ({', '.join(baselines)})")
        return _message(f"{why}: speedups cannot be computed", "Speedup vs baseline")
    methods = [m for m in baselines if any(r["method"] == m for r in rows)]
    methods += [m for m in _order(r["method"] for r in rows) if m not in methods]
    formats = _order(r["format"] for r in rows)
    logs = [math.log2(v) for cells in table.values() for v in cells.values()]
    limit = max(0.5, max(abs(v) for v in logs))  # symmetric, so 1.0x is always the centre
    cmap = matplotlib.colormaps["RdBu"].with_extremes(bad="#eeeeee")  # grey: no cell
    fig, axes = _grid(len(table), 2, 1.4 * len(formats) + 2.2, 0.55 * len(methods) + 1.4,
                      extra_w=1.2)
    for ax, ((device, batch), cells) in zip(axes, table.items()):
        grid = np.full((len(methods), len(formats)), np.nan)
        for (m, f), v in cells.items():
            grid[methods.index(m), formats.index(f)] = math.log2(v)
        image = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=-limit, vmax=limit,
                          aspect="auto")
        for i, j in np.ndindex(grid.shape):
            v = grid[i, j]
            text, dark = ("n/a", False) if np.isnan(v) else (f"{2 ** v:.2f}x", abs(v) > 0.6 * limit)
            ax.text(j, i, text, ha="center", va="center", fontsize=10,
                    color="white" if dark else "#222222")
        ax.set_xticks(range(len(formats)), formats)
        ax.set_yticks(range(len(methods)), methods)
        ax.set_title(f"{device}, batch {batch}", fontsize=10)
    bar = fig.colorbar(image, ax=list(axes[:len(table)]), shrink=0.9)
    ticks = [t for t in range(-math.ceil(limit), math.ceil(limit) + 1) if abs(t) <= limit]
    bar.set_ticks(ticks, labels=[f"{2.0 ** t:g}x" for t in ticks])
    bar.set_label("speedup vs baseline (>1 is faster)", fontsize=9)
    fig.suptitle("Speedup vs baseline p50 (geometric mean over models; n/a: no cell)",
                 fontsize=12)
    return _png(fig)


def latency_distributions(samples: Iterable[Row]) -> bytes:
    """Box plots of the raw per-iteration latencies, log x, one panel per model.

    `samples` rows: model, method, format, device, batch_size, samples (a list of ms)."""
    series = [s for s in samples if s.get("samples") is not None and len(s["samples"])]
    if not series:
        return _message("no raw latency samples stored for this run", "Latency distributions")
    by_model = defaultdict(list)
    for s in series:
        by_model[s["model"]].append(s)
    many_devices = len({s["device"] for s in series}) > 1
    heights = [0.32 * len(v) + 0.9 for v in by_model.values()]
    fig = Figure(figsize=(11, sum(heights) + 0.8), layout="constrained")
    axes = fig.subplots(len(by_model), 1, squeeze=False, height_ratios=heights).ravel()
    for ax, (model, group) in zip(axes, by_model.items()):
        group.sort(key=lambda s: (s["batch_size"], s["device"], s["method"], s["format"]))
        data = [np.asarray(s["samples"], dtype=float) for s in group]
        labels = [f"{s['method']}/{s['format']}" + (f"/{s['device']}" if many_devices else "")
                  + f"  b={s['batch_size']}  n={len(d)}" for s, d in zip(group, data)]
        box = ax.boxplot(data, orientation="horizontal", tick_labels=labels, widths=0.6,
                         patch_artist=True, whis=(1, 99),
                         flierprops={"markersize": 2, "alpha": 0.3, "markeredgecolor": "#555"},
                         medianprops={"color": "black"})
        colour, _, _ = _styles(group)
        for patch, s in zip(box["boxes"], group):
            patch.set_facecolor(colour[s["method"]])
            patch.set_alpha(0.55)
        _log_axis(ax)
        ax.invert_yaxis()  # first cell at the top, like the results table
        ax.tick_params(axis="y", labelsize=8)
        ax.grid(True, axis="x", which="both", alpha=0.25)
        ax.set_title(model, fontsize=10, loc="left")
        ax.set_xlabel("latency per call, ms (log); whiskers p1-p99", fontsize=9)
    fig.suptitle("Raw latency samples per cell", fontsize=12)
    return _png(fig)
