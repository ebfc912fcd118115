"""Peak memory of a block of work and of its named phases: CUDA allocator peak, or sampled
process RSS on CPU; and the allocator setting that lets a CPU process give freed memory back.
"""

from __future__ import annotations

import ctypes
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType

import torch

_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
# glibc's mallopt parameter number for the mmap threshold (malloc.h: M_MMAP_THRESHOLD).
_M_MMAP_THRESHOLD = -3
# Allocations of at least this many bytes get their own mapping, unmapped again on free. Every
# such allocation pays fresh page faults: 256 KiB cost LoRA ~45% of its CPU step time, 8 MiB
# a few % (the activation-sized buffers a ViT-B step frees most, batch x tokens x MLP width,
# are above it) for most of the memory saving.
HEAP_MMAP_THRESHOLD_BYTES = 8 * 2**20


def resident_bytes() -> int:
    """The process's resident memory now (Linux); elsewhere its (monotonic) peak."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * _PAGE_SIZE
    except OSError:
        import resource

        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def return_freed_memory_to_os(threshold_bytes: int = HEAP_MMAP_THRESHOLD_BYTES) -> bool:
    """Pin glibc's mmap threshold so freed activation-sized buffers go back to the OS.

    glibc raises its mmap threshold to the size of every mapped block that is freed (up to
    32 MiB), after which activation-sized buffers come from the heap, where small long-lived
    tensors (saved for backward, optimizer state) pin the holes freed ones leave: resident
    memory that no tensor uses grows step by step (with LoRA's extra per-layer outputs it made
    the process larger than full fine-tuning's). A fixed threshold turns that off.
    Process-wide and idempotent; False where there is no glibc ``mallopt`` (then a no-op).
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, threshold_bytes))


class PeakMemory:
    """Context manager; ``peak_bytes`` is the peak during the block, ``added_bytes`` above
    start, and ``phase_peaks`` the peak within each :meth:`phase` entered inside it.

    On CPU a background thread samples resident memory every few milliseconds (RSS has no
    resettable peak), so very short spikes can be missed; on CUDA the allocator's exact peak
    (reset at every phase's start; the block's peak is kept across the resets).
    """

    def __init__(self, device: torch.device, interval_seconds: float = 0.005) -> None:
        self.device = device
        self.interval = interval_seconds
        self.start_bytes = 0
        self.peak_bytes = 0
        self.phase_peaks: dict[str, int] = {}
        self._phase: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def _on_cuda(self) -> bool:
        return self.device.type == "cuda"

    def _cuda_peak(self) -> int:
        torch.cuda.synchronize(self.device)
        return int(torch.cuda.max_memory_allocated(self.device))

    def __enter__(self) -> PeakMemory:
        if self._on_cuda:
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.start_bytes = torch.cuda.memory_allocated(self.device)
        else:
            self.start_bytes = resident_bytes()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        self.peak_bytes = self.start_bytes
        return self

    def _record(self, value: int) -> None:
        self.peak_bytes = max(self.peak_bytes, value)
        phase = self._phase
        if phase is not None:
            self.phase_peaks[phase] = max(self.phase_peaks.get(phase, 0), value)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._record(resident_bytes())
            time.sleep(self.interval)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Attribute the peak inside the ``with`` block to phase ``name`` (phases follow one
        another; entering a name again keeps the larger peak)."""
        if self._on_cuda:
            self._record(self._cuda_peak())  # the block's peak so far survives the reset
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            self._record(resident_bytes())
        self._phase = name
        self.phase_peaks[name] = max(self.phase_peaks.get(name, 0), self._current_bytes())
        try:
            yield
        finally:
            self._record(self._cuda_peak() if self._on_cuda else resident_bytes())
            self._phase = None

    def _current_bytes(self) -> int:
        if self._on_cuda:
            return int(torch.cuda.memory_allocated(self.device))
        return resident_bytes()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._on_cuda:
            self._record(self._cuda_peak())
        else:
            self._stop.set()
            if self._thread is not None:
                self._thread.join()
            self._record(resident_bytes())

    @property
    def added_bytes(self) -> int:
        return max(0, self.peak_bytes - self.start_bytes)
