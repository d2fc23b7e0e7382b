"""Peak resident memory of this process.

On Linux the kernel keeps the exact high-water mark, VmHWM in /proc/self/status, for this
process image; no sampling is needed, and none is done: a sampling thread waking every few
milliseconds beside the timed loop slowed resnet18 by up to ~19% on a loaded 2-core host.
getrusage's ru_maxrss is not used there because it survives fork+exec, so a worker started
by a large parent (a Ray worker) would report the parent's peak. Elsewhere a background
thread samples RSS."""

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
        self.method = "VmHWM" if high_water_mark_mb() > 0 else f"sampled every {SAMPLE_INTERVAL_S}s"
        self._thread = (None if self.method == "VmHWM" else
                        threading.Thread(target=self._loop, daemon=True, name="rss-sampler"))

    def _rss_mb(self) -> float:
        return self._process.memory_info().rss / 2**20

    def _loop(self) -> None:
        while not self._stop.wait(SAMPLE_INTERVAL_S):
            self._peak_mb = max(self._peak_mb, self._rss_mb())

    def __enter__(self) -> "RssSampler":
        if self._thread:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread:
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
