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


_HOOK_PATH = os.pathsep.join([str(_SLOW_PHASE_HOOK), str(REPO_ROOT)])


def slow_evaluation_env(seconds: float) -> dict[str, str]:
    """Extra environment for ``worker_process``: every evaluation pass of the worker first
    sleeps ``seconds`` (``slow_phase/sitecustomize.py``), a phase without a training step."""
    return {"PYTHONPATH": _HOOK_PATH, "VLMC_TEST_SLOW_EVALUATION_S": str(seconds)}


def slow_claim_env(flag: Path, seconds: float) -> dict[str, str]:
    """Extra environment for ``worker_process``: while ``flag`` exists, every claim of the
    worker first writes ``<flag>.<pid>`` (holding the job id) and sleeps ``seconds``: the
    window between receiving a job's message and claiming the job, held open."""
    return {
        "PYTHONPATH": _HOOK_PATH,
        "VLMC_TEST_SLOW_CLAIM_FILE": str(flag),
        "VLMC_TEST_SLOW_CLAIM_S": str(seconds),
    }
