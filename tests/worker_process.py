"""``vlmc worker`` as a child process on a test's embedded settings (the same data dir,
database, broker and blob store as the API in the test's process)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from service.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def worker_process(settings: Settings, log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "VLMC_DATA_DIR": str(settings.data_dir),
        "VLMC_DATABASE_URL": settings.database_url,
        "VLMC_BROKER_URL": settings.broker_url,
        "VLMC_BLOB_DIR": str(settings.blobs_path),
        "VLMC_WORKER_HEARTBEAT_INTERVAL_S": "1",
        "VLMC_WORKER_LOG_FORMAT": "text",
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "worker", "--loglevel", "WARNING"],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
