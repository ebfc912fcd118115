"""Container health check of a worker: ``python -m workers.pipeline.healthcheck``.

Exits 0 when a worker on this host wrote a heartbeat within the timeout (the same freshness
rule /readyz applies), 1 otherwise. The heartbeat is written by the worker's own loop, so a
hung or crashed worker process turns the container unhealthy.
"""

from __future__ import annotations

import socket
import sys

from service.db.session import create_db_engine, create_session_factory
from service.jobs.heartbeats import live_workers
from service.settings import get_settings


def main() -> int:
    """0 if this host has a live worker heartbeat, else 1 (with the reason on stderr)."""
    settings = get_settings()
    engine = create_db_engine(settings.database_url)
    try:
        with create_session_factory(engine)() as session:
            live = live_workers(session, settings.worker_heartbeat_timeout_s)
    except Exception as error:
        print(f"unhealthy: database unavailable: {error}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    host = socket.gethostname()
    if any(worker.hostname == host for worker in live):
        return 0
    print(f"unhealthy: no fresh heartbeat from a worker on {host}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
