"""The Task plugin contract, and the fidelity thresholds a variant without labels must meet
to count as keeping the fp32 source's quality."""

from __future__ import annotations

from dataclasses import dataclass

# The worst per-sample cosine similarity to the fp32 source's outputs (over every output)
# a variant of each precision must keep: the same tolerance the build's parity check uses.
FIDELITY_COSINE_MIN = {"fp32": 0.9999, "fp16": 0.999, "bf16": 0.99, "int8": 0.9}
# ... and the share of samples whose top-1 class must agree with the source (classification)
TOP1_AGREEMENT_MIN = {"fp32": 0.99, "fp16": 0.95, "bf16": 0.9, "int8": 0.8}
FIDELITY_METRIC = "fidelity_cosine_min"


@dataclass(frozen=True)
class Task:
    name: str
    # primary metric with labels (None: the task has no labelled metric), higher is better
    labelled_metric: str | None
    # primary metric without labels: a fidelity measure against the fp32 source
    fidelity_metric: str
    loss: str | None                # training loss (harness.methods.training), None: none
    description: str

    def quality(self, metrics: dict, labelled: bool) -> tuple[float | None, str]:
        """The figure that gates a pick, and its metric's name."""
        name = self.labelled_metric if labelled and self.labelled_metric else self.fidelity_metric
        return metrics.get(name), name

    @staticmethod
    def fidelity_threshold(precision: str) -> float:
        return FIDELITY_COSINE_MIN.get(precision, FIDELITY_COSINE_MIN["int8"])
