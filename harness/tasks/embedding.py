"""Embeddings: output 0 is a vector (or a sequence of them) per sample; quality is its
cosine to the fp32 source's (worst sample). No training loss: training methods are
skipped."""

from harness.tasks.base import Task

TASK = Task(name="embedding", labelled_metric=None, fidelity_metric="cosine_min", loss=None,
            description="cosine of output 0 to the fp32 source's (mean and worst sample)")
