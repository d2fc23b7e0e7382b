"""Parity of a converted artifact with its fp32 source, on the eval pack's test samples,
through the agent runtime that will run it: per output max abs error, cosine and SQNR, and
top-1 agreement for classification. A variant outside its precision's tolerance is stored
and measured like any other, but marked suspect: it is never hidden. A parity this build
host cannot measure (no device here runs the format) is stored as not measured (`ok` and
`suspect` null, with the reason), never as passed."""

from __future__ import annotations

from harness.tasks.base import FIDELITY_COSINE_MIN, TOP1_AGREEMENT_MIN


def tolerance(precision: str) -> dict:
    """The minimum per-sample cosine (every output) and top-1 agreement (classification)
    with the fp32 source: the thresholds the tasks gate unlabelled quality with."""
    known = precision if precision in FIDELITY_COSINE_MIN else "int8"
    return {"cosine_min": FIDELITY_COSINE_MIN[known],
            "top1_agreement": TOP1_AGREEMENT_MIN[known]}


MAX_SAMPLES = 360  # parity on the first test samples of the first shape


def not_measured(reason: str) -> dict:
    return {"ok": None, "suspect": None, "measured": False, "reason": reason}


def check_parity(artifact: str, plugin, precision: str, pack_path: str, threads: int = 1,
                 full_range_int8: bool = False) -> dict:
    """Run the artifact on this build host through the format's agent runtime. A format no
    device of this host runs (TensorRT on a CPU-only build node) gets no figure, and says so:
    its agents' quality probes still compare it with the fp32 source."""
    from agents.devices import detect_kinds
    from agents.evalpack import EvalPack
    from agents.probes.quality import run_samples, task_metrics
    from agents.runtimes import open_session

    here = [kind for kind in plugin.devices if kind in detect_kinds()]
    if not here:
        return not_measured(f"no {'/'.join(plugin.devices)} device on the build host to run "
                            f"{plugin.runtime}; the agents' accuracy and fidelity figures "
                            f"still compare the variant with the fp32 source")
    session = open_session(plugin.runtime, artifact, threads=threads, device=here[0],
                           precision=precision)
    note = saturation_note(plugin, precision, full_range_int8)
    pack = EvalPack(pack_path)
    count = min(pack.samples, MAX_SAMPLES)
    outputs = run_samples(session.run, [pack.sample(0, i) for i in range(count)])
    references = [ref[:count] for ref in pack.reference(0)]
    metrics = task_metrics(pack.task, outputs, references, None)
    tol = tolerance(precision)
    agreement = metrics.get("top1_agreement")
    # Top-1 agreement gates only on real (labelled) data: a random-weight model fed noise
    # has near-flat logits whose argmax means nothing; there the cosine decides.
    gates_agreement = agreement is not None and pack.labels is not None
    ok = (metrics["fidelity_cosine_min"] >= tol["cosine_min"]
          and (not gates_agreement or agreement >= tol["top1_agreement"]))
    result = {"samples": count, "max_abs_err": metrics["fidelity_max_abs_err"],
              "cosine_min": metrics["fidelity_cosine_min"], "top1_agreement": agreement,
              "sqnr_db": metrics["fidelity_sqnr_db"],
              "outputs": {k: v for k, v in metrics.items() if k.startswith("out")},
              "tolerance": tol if gates_agreement else {"cosine_min": tol["cosine_min"]},
              "measured": True, "ok": bool(ok), "suspect": not ok}
    if note:
        result["int8_saturation"] = note
    return result


def saturation_note(plugin, precision: str, full_range_int8: bool) -> str | None:
    """Said when this host's int8 kernels can saturate on this variant: an x86 CPU without
    VNNI running full-range int8 weights (reduce_range false) in a runtime whose u8 x s8
    kernels add pairs of products in 16 bits."""
    from agents.devices import int8_saturates

    if precision == "int8" and full_range_int8 and plugin.int8_saturation and int8_saturates():
        return ("possible on this host: its CPU has no VNNI and the variant's int8 weights "
                "use the full range (reduce_range false); figures from it may be off")
    return None
