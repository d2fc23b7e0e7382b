"""Classification: logits (output 0, classes on the last axis). With labels, top-1 (and
top-5) accuracy; without, fidelity to the fp32 source (top-1 agreement is reported but does
not gate: on random weights fed noise the logits are near-flat and their argmax means
little)."""

from harness.tasks.base import FIDELITY_METRIC, Task

TASK = Task(name="classification", labelled_metric="top1", fidelity_metric=FIDELITY_METRIC,
            loss="cross_entropy",
            description="top-1 / top-5 on labels; cosine and SQNR to the fp32 logits")
