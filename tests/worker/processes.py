"""Real worker processes (``vlmc worker``) for tests, stopped when the block ends."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.load.processes import REPO_ROOT, start_worker, stop_process
from service.settings import Settings

_SLOW_PHASE_HOOK = Path(__file__).resolve().parent / "slow_phase"


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


def slow_evaluation_env(seconds: float) -> dict[str, str]:
    """Extra environment for ``worker_process``: every evaluation pass of the worker first
    sleeps ``seconds`` (``slow_phase/sitecustomize.py``), a phase without a training step."""
    return {
        "PYTHONPATH": os.pathsep.join([str(_SLOW_PHASE_HOOK), str(REPO_ROOT)]),
        "VLMC_TEST_SLOW_EVALUATION_S": str(seconds),
    }
