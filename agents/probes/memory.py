"""Peak resident memory of this process: sampled in a background thread and checked against
the kernel's high-water mark, whichever is higher.

On Linux the high-water mark is VmHWM of /proc/self/status: it belongs to this process image.
getrusage's ru_maxrss is not used there because it survives fork+exec, so a worker started
by a large parent (a Ray worker) would report the parent's peak."""

from __future__ import annotations

import resource
import sys
import threading

import psutil

SAMPLE_INTERVAL_S = 0.005


class RssSampler:
    def __init__(self) -> None:
        self._process = psutil.Process()
        self.baseline_mb = self._rss_mb()
        self._peak_mb = self.baseline_mb
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="rss-sampler")

    def _rss_mb(self) -> float:
        return self._process.memory_info().rss / 2**20

    def _loop(self) -> None:
        while not self._stop.wait(SAMPLE_INTERVAL_S):
            self._peak_mb = max(self._peak_mb, self._rss_mb())

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def peak_mb(self) -> float:
        return max(self._peak_mb, self._rss_mb(), high_water_mark_mb())


def high_water_mark_mb() -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    if sys.platform == "darwin":  # no fork+exec inheritance problem there; bytes
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return 0.0
