"""Any outputs: every output compared with the fp32 source's (cosine, SQNR, max abs error
per output); the worst cosine over all outputs gates. No training loss."""

from harness.tasks.base import FIDELITY_METRIC, Task

TASK = Task(name="generic", labelled_metric=None, fidelity_metric=FIDELITY_METRIC, loss=None,
            description="per output: cosine, SQNR, max abs error to the fp32 source")
