"""``python -m workers.main``: run an update worker on the configured broker.

The ``vlmc worker`` command (and ``vlmc serve``'s embedded worker) start this module in a
process of its own, so the CLI never imports the worker's code.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from service.jobs.constants import UPDATE_QUEUE
from workers.celery_app import celery_app


def worker_arguments(concurrency: int, loglevel: str) -> list[str]:
    """Celery's worker arguments: the updates queue, prefetch 1, a solo pool for one job."""
    return [
        "worker",
        f"--queues={UPDATE_QUEUE}",
        f"--concurrency={concurrency}",
        "--pool=solo" if concurrency == 1 else "--pool=prefork",
        f"--loglevel={loglevel}",
        "--prefetch-multiplier=1",
    ]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run an update worker.")
    parser.add_argument("--concurrency", type=int, default=1, help="jobs at a time (one per GPU)")
    parser.add_argument("--loglevel", default="INFO", help="Celery log level")
    args = parser.parse_args(argv)
    celery_app.worker_main(worker_arguments(args.concurrency, args.loglevel))


if __name__ == "__main__":
    main()
