"""Per-layer profiles from the results database: one cell's layers, roll-ups by op type
and precision, two variants lined up layer by layer, and a sentence that says what the
figures show. Read-only; `harness profile` and the report print what these return.

Lining up two variants: optimization renames and splits layers (ORT's int8 graph has
`node_Conv_70_quant` + a Cast + two Muls where fp32 ran one fused `relu_1_nchwc`), so
names rarely match. Compute layers (convolutions, matmuls, linears, in any precision)
survive every method that keeps the architecture; each one and the layers after it up to
the next form a segment. Segments are matched by their compute layer's name where the
names survive (OpenVINO), else by its shapes (input and output), else by
position; runtimes may order a residual block's branches differently, which position
alone would pair wrongly. Otherwise single layers are matched by name."""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass

import duckdb

from harness.errors import InputError

_COMPUTE = re.compile(r"conv|matmul|gemm|fullyconnected|linear|addmm|^mm$|^bmm$|attention")
SAME_BAND = 0.10  # a segment within 10% of the other side's time is "same"


_QLINEAR_PREFIX = re.compile(r"^qlinear(?=[a-z])")
_QUANTIZE_STEP = re.compile(r"(dynamic)?(de)?quantize(linear|_per_\w+)?")


def is_compute(op_type: str) -> bool:
    """A convolution, matmul or linear in any precision (DynamicQuantizeMatMul, QLinearConv,
    onednn::qconv2d_pointwise); a quantize / dequantize step is not one."""
    # ORT's QLinear<Op> family quantizes any op (QLinearAdd, QLinearGlobalAveragePool):
    # what follows the prefix says whether it computes (QLinearConv, QLinearMatMul)
    base = _QLINEAR_PREFIX.sub("", op_type.split("::")[-1].lower())
    return not _QUANTIZE_STEP.fullmatch(base) and bool(_COMPUTE.search(base))


@dataclass(frozen=True)
class CellKey:
    run_id: str
    cell_id: str
    batch_size: int
    shape: str


def profiled_cells(con: duckdb.DuckDBPyConnection, run_id: str) -> list[dict]:
    """Every (cell, batch, shape) of a run with its profile pass: totals, the top op type,
    the int8 share, or the reason there is no profile."""
    cur = con.execute("""
        WITH top AS (SELECT run_id, cell_id, batch_size, shape,
                            arg_max(op_type, time_ms) AS top_op, max(share) AS top_share
                     FROM op_type_profile WHERE run_id = ? GROUP BY ALL),
             int8 AS (SELECT run_id, cell_id, batch_size, shape, share AS int8_share
                      FROM precision_profile WHERE run_id = ? AND precision = 'int8')
        SELECT r.cell_id, r.model, r.method, r.format, r.device, r.precision, r.batch_size,
               r.shape, r.latency_p50_ms, r.profile_total_ms, r.profile_runs,
               r.profile_source, r.profile_note, t.top_op, t.top_share,
               coalesce(i.int8_share, CASE WHEN r.profile_total_ms IS NOT NULL THEN 0 END)
                   AS int8_share
        FROM results r
        LEFT JOIN top t USING (run_id, cell_id, batch_size, shape)
        LEFT JOIN int8 i USING (run_id, cell_id, batch_size, shape)
        WHERE r.run_id = ? AND r.status = 'ok'
          AND (r.profile_total_ms IS NOT NULL OR r.profile_note IS NOT NULL)
        ORDER BY r.model, r.device, r.batch_size, r.shape, r.format, r.method""",
        [run_id, run_id, run_id])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


def find_cell(con: duckdb.DuckDBPyConnection, cell_id: str, *, run_id: str | None = None,
              batch_size: int | None = None, shape: str | None = None) -> CellKey:
    """The profiled row a cell id names: in `run_id`, else the latest run that profiled
    it; the smallest batch and first shape unless given."""
    where, params = ["m.cell_id = ?"], [cell_id]
    if run_id:
        where.append("m.run_id = ?")
        params.append(run_id)
    if batch_size is not None:
        where.append("m.batch_size = ?")
        params.append(batch_size)
    if shape is not None:
        where.append("m.shape = ?")
        params.append(shape)
    row = con.execute(
        f"""SELECT m.run_id, m.cell_id, m.batch_size, m.shape FROM measurements m
            JOIN runs r USING (run_id)
            WHERE {' AND '.join(where)}
              AND (m.profile_total_ms IS NOT NULL OR m.profile_note IS NOT NULL)
            ORDER BY r.started_at DESC, m.batch_size, m.shape LIMIT 1""", params).fetchone()
    if row:
        return CellKey(*row)
    known = [r[0] for r in con.execute(
        "SELECT DISTINCT cell_id FROM measurements WHERE profile_total_ms IS NOT NULL "
        "ORDER BY 1 LIMIT 8").fetchall()]
    asked = cell_id + "".join(f" {k}={v}" for k, v in
                              (("run", run_id), ("batch", batch_size), ("shape", shape)) if v)
    raise InputError(f"no profiled cell {asked!r} in this database", field="cell",
                     allowed=("a profiled cell id (" + ", ".join(known) + ")" if known else
                              "none: no run has a profile (set measure.profile: true)"))


def cell_info(con: duckdb.DuckDBPyConnection, key: CellKey) -> dict:
    cur = con.execute("""SELECT run_id, cell_id, model, method, format, device, precision,
                                batch_size, shape, latency_p50_ms, profile_total_ms,
                                profile_runs, profile_source, profile_note
                         FROM results WHERE run_id = ? AND cell_id = ? AND batch_size = ?
                           AND shape = ?""",
                      [key.run_id, key.cell_id, key.batch_size, key.shape])
    return dict(zip([d[0] for d in cur.description], cur.fetchone()))


def layers(con: duckdb.DuckDBPyConnection, key: CellKey) -> list[dict]:
    cur = con.execute("""SELECT layer_order, layer, op_type, exec_type, precision,
                                input_shapes AS shapes, time_ms, share FROM op_profiles
                         WHERE run_id = ? AND cell_id = ? AND batch_size = ? AND shape = ?
                         ORDER BY layer_order""",
                      [key.run_id, key.cell_id, key.batch_size, key.shape])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


def rollup(rows: list[dict], by: str) -> list[dict]:
    """Time and share per op type or precision, largest first."""
    groups: dict[str, dict] = {}
    for row in rows:
        name = row[by] or "unknown"
        group = groups.setdefault(name, {by: name, "layers": 0, "time_ms": 0.0, "share": 0.0})
        group["layers"] += 1
        group["time_ms"] += row["time_ms"]
        group["share"] += row["share"] or 0.0
    return sorted(groups.values(), key=lambda g: -g["time_ms"])


def int8_share(rows: list[dict]) -> float:
    return sum(r["share"] or 0.0 for r in rows if r["precision"] == "int8")


def _segments(rows: list[dict]) -> tuple[dict | None, list[dict]]:
    """(the layers before the first compute layer, if any; one segment per compute layer
    with the layers after it up to the next)."""
    prelude: dict | None = None
    segments: list[dict] = []
    for row in rows:
        if is_compute(row["op_type"]):
            segments.append({"layer": row["layer"], "op_type": row["op_type"],
                             "precision": row["precision"], "shapes": row.get("shapes"),
                             "time_ms": 0.0, "layers": 0})
        elif not segments and prelude is None:
            prelude = {"layer": "(before the first compute layer)", "op_type": "",
                       "precision": None, "shapes": None, "time_ms": 0.0, "layers": 0}
        target = segments[-1] if segments else prelude
        target["time_ms"] += row["time_ms"]
        target["layers"] += 1
    return prelude, segments


def verdict(a_ms: float | None, b_ms: float | None) -> str:
    if a_ms is None:
        return "only in B"
    if b_ms is None:
        return "only in A"
    if a_ms <= 0:
        return "same" if b_ms <= 0 else "slower"
    ratio = b_ms / a_ms
    return "same" if abs(ratio - 1) <= SAME_BAND else ("faster" if ratio < 1 else "slower")


def _keyed(segments: list[dict], key) -> dict:
    """Segments by a key and its occurrence (the 2nd conv of a given shape...)."""
    seen: dict = {}
    out = {}
    for k, seg in enumerate(segments):
        base = key(seg)
        if base is None:
            return {}
        seen[base] = seen.get(base, 0) + 1
        out[(base, seen[base])] = k
    return out


def _pair_by(a_seg: list[dict], b_seg: list[dict], key) -> list[tuple] | None:
    """Pairs of segment indices whose compute layers share a key, when at least half of
    A's find a partner; None otherwise. Layers that share a key several times (a block's
    first conv and its downsample conv take and give the same shapes) are paired so their
    time ratios stay closest to the whole run's: runtimes run them in different orders."""
    a_keys, b_keys = _keyed(a_seg, key), _keyed(b_seg, key)
    common = set(a_keys) & set(b_keys)
    if not a_seg or len(common) < max(1, len(a_seg) / 2):
        return None
    run_ratio = (sum(s["time_ms"] for s in b_seg) or 1e-12) / \
        (sum(s["time_ms"] for s in a_seg) or 1e-12)
    pairs = []
    for base in {k[0] for k in common}:
        a_idx = [a_keys[k] for k in sorted(common) if k[0] == base]
        b_idx = [b_keys[k] for k in sorted(common) if k[0] == base]
        pairs += list(zip(a_idx, _closest_order(a_seg, b_seg, a_idx, b_idx, run_ratio)))
    return pairs


def _closest_order(a_seg, b_seg, a_idx: list[int], b_idx: list[int], run_ratio: float):
    """b_idx reordered so each pair's time ratio is closest to the run's (up to 6 layers of
    one key; more keep their order)."""
    if len(b_idx) < 2 or len(b_idx) > 6:
        return b_idx

    def cost(order):
        return sum(abs(math.log(max(b_seg[j]["time_ms"], 1e-9) / max(a_seg[i]["time_ms"], 1e-9))
                       - math.log(run_ratio)) for i, j in zip(a_idx, order))
    return list(min(itertools.permutations(b_idx), key=cost))


def _shape_key(shapes: str | None):
    """A compute layer's shapes, free of layout: its first input's and first output's dims
    as sorted tuples (ORT's int8 graph runs NHWC where fp32 runs NCHWc, and reports no
    weight for a prepacked QLinearConv); without an output, the first two inputs."""
    if not shapes:
        return None
    inputs, _, outputs = shapes.partition("->")
    def dims(text):
        return tuple(sorted(int(d) for d in text.split("x"))) if text else ()
    ins = [dims(t) for t in inputs.split(";") if t]
    outs = [dims(t) for t in outputs.split(";") if t]
    if not ins:
        return None
    return (ins[0], outs[0]) if outs else tuple(ins[:2])


def _lined_up(a_seg: list[dict], b_seg: list[dict], pairs: list[tuple]) -> list[tuple]:
    """Matched segments in A's order; each unmatched B segment after the B segment before
    it, so both sides read in execution order."""
    b_of = dict(pairs)
    out: list[tuple] = []
    placed = set()
    for i, seg in enumerate(a_seg):
        j = b_of.get(i)
        if j is not None:
            # B's unmatched segments that run before this one
            for k in range(j):
                if k not in placed and k not in b_of.values():
                    out.append((None, b_seg[k]))
                    placed.add(k)
            placed.add(j)
        out.append((seg, None if j is None else b_seg[j]))
    out += [(None, b_seg[k]) for k in range(len(b_seg)) if k not in placed]
    return out


def diff(a_rows: list[dict], b_rows: list[dict]) -> tuple[str, list[dict]]:
    """A's and B's layers lined up: (how they were matched, rows with a_* and b_* fields,
    B's time over A's and a verdict: faster, slower, same, only in A / B). Compute layers
    (each with the layers after it up to the next) are matched by name where the runtime
    keeps names (OpenVINO), else by their layout-free input and output shapes (ONNX
    Runtime and torch report them), else by position when both have as many; failing all
    three, single layers are matched by name."""
    (a_pre, a_seg), (b_pre, b_seg) = _segments(a_rows), _segments(b_rows)
    prelude = [(a_pre, b_pre)] if a_pre or b_pre else []
    by_name = _pair_by(a_seg, b_seg, lambda seg: seg["layer"])
    by_shape = None if by_name else _pair_by(a_seg, b_seg, lambda seg: _shape_key(seg["shapes"]))
    n = len(a_seg)
    if by_name or by_shape:
        pairs = by_name or by_shape
        how = (f"{len(pairs)} of {n} compute layers by {'name' if by_name else 'shapes'}"
               " (each with the layers after it up to the next)")
        lined = prelude + _lined_up(a_seg, b_seg, pairs)
    elif a_seg and n == len(b_seg):
        how = (f"by position of the {n} compute layers (each with the layers after it up to "
               "the next)")
        lined = prelude + list(zip(a_seg, b_seg))
    else:
        how = f"by layer name (compute layers differ: {n} in A, {len(b_seg)} in B)"
        b_by_name = {r["layer"]: r for r in b_rows}
        used = set()
        lined = []
        for row in a_rows:
            match = b_by_name.get(row["layer"])
            if match is not None:
                used.add(row["layer"])
            lined.append((row, match))
        lined += [(None, r) for r in b_rows if r["layer"] not in used]
    out = []
    for a, b in lined:
        a_ms, b_ms = (a or {}).get("time_ms"), (b or {}).get("time_ms")
        out.append({"a_layer": (a or {}).get("layer"), "a_op": (a or {}).get("op_type"),
                    "a_precision": (a or {}).get("precision"), "a_ms": a_ms,
                    "b_layer": (b or {}).get("layer"), "b_op": (b or {}).get("op_type"),
                    "b_precision": (b or {}).get("precision"), "b_ms": b_ms,
                    "shapes": (a or b or {}).get("shapes"),
                    "ratio": (b_ms / a_ms) if a_ms and b_ms is not None else None,
                    "verdict": verdict(a_ms, b_ms)})
    return how, out


def explain(label: str, rows: list[dict], total_ms: float, base_label: str | None = None,
            base_rows: list[dict] | None = None, base_total_ms: float | None = None) -> str:
    """One sentence from the figures: the op type that takes most of the time, the int8
    share, and, beside the fp32 baseline, what took its time in a run how much shorter."""
    top = rollup(rows, "op_type")[0]
    text = f"{label}: {top['op_type']} takes {top['share']:.0%} of the run"
    share = int8_share(rows)
    if share > 0:
        text += f"; {share:.0%} of the run is in int8 kernels"
    elif any(r["precision"] for r in rows):
        text += "; no time in int8 kernels"
    if base_rows and base_total_ms and total_ms and base_label:
        base_top = rollup(base_rows, "op_type")[0]
        ratio = total_ms / base_total_ms
        than = (f"{ratio:.1f}x shorter" if ratio > 1 else f"{1 / ratio:.1f}x longer"
                if ratio < 1 else "as long")
        text += (f"; {base_label} {base_top['op_type']} took {base_top['share']:.0%} of a "
                 f"{than} run")
    return text
