"""Peak memory of a block of work: CUDA allocator peak, or sampled process RSS on CPU."""

from __future__ import annotations

import os
import threading
import time
from types import TracebackType

import torch

_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def resident_bytes() -> int:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * _PAGE_SIZE
    except OSError:  # not Linux: fall back to the (monotonic) peak
        import resource

        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


class PeakMemory:
    """Context manager; ``peak_bytes`` is the peak during the block, ``added_bytes`` above start.

    On CPU a background thread samples resident memory every few milliseconds (RSS has no
    resettable peak), so very short spikes can be missed; on CUDA the allocator's exact peak.
    """

    def __init__(self, device: torch.device, interval_seconds: float = 0.005) -> None:
        self.device = device
        self.interval = interval_seconds
        self.start_bytes = 0
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.start_bytes = torch.cuda.memory_allocated(self.device)
        else:
            self.start_bytes = resident_bytes()
            self.peak_bytes = self.start_bytes
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_bytes = max(self.peak_bytes, resident_bytes())
            time.sleep(self.interval)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak_bytes = torch.cuda.max_memory_allocated(self.device)
        else:
            self._stop.set()
            if self._thread is not None:
                self._thread.join()
            self.peak_bytes = max(self.peak_bytes, resident_bytes())

    @property
    def added_bytes(self) -> int:
        return max(0, self.peak_bytes - self.start_bytes)
