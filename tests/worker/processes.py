"""Real worker processes (``vlmc worker``) for tests, stopped when the block ends."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.load.processes import start_worker, stop_process
from service.settings import Settings


@contextmanager
def worker_process(
    settings: Settings, log_path: Path, **extra_env: str
) -> Iterator[subprocess.Popen[bytes]]:
    """A worker on ``settings``' database and broker, logging to ``log_path``."""
    process = start_worker(settings, log_path, **extra_env)
    try:
        yield process
    finally:
        stop_process(process)
