"""Fault-test fixtures: a module-wide ``Cluster`` = a fresh PostgreSQL database, a private
Redis, the API in its own process, and worker processes started per test (cluster.py)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from subprocess import Popen

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from bench.load.processes import RedisServer
from service.db.migrate import upgrade_head
from service.db.session import create_db_engine, create_session_factory
from service.settings import Settings
from tests.conftest import ADMIN_KEY, create_postgres_database, drop_postgres_database
from tests.faults.cluster import api_process
from tests.model_fixtures import tiny_model_dir
from tests.worker.harness import Shots, fashion_shots
from tests.worker.processes import worker_process

__all__ = ["tiny_model_dir"]

# Short leases and fast polling so faults are noticed in seconds, not minutes.
WORKER_ENV = {
    "VLMC_WORKER_LEASE_SECONDS": "8",
    "VLMC_WORKER_HEARTBEAT_INTERVAL_S": "0.5",
    "VLMC_WORKER_PROGRESS_INTERVAL_S": "0",
    "VLMC_WORKER_CANCEL_POLL_S": "0.2",
}


@dataclass
class Cluster:
    settings: Settings
    redis: RedisServer
    api: httpx.Client
    logs: Path
    model_dir: Path
    session_factory: sessionmaker[Session]

    def worker(self, name: str, **env: str) -> AbstractContextManager[Popen[bytes]]:
        """A ``vlmc worker`` process (solo pool) logging to ``<logs>/<name>.log``."""
        return worker_process(self.settings, self.logs / f"{name}.log", **{**WORKER_ENV, **env})


@pytest.fixture(scope="session")
def shots() -> Shots:
    return fashion_shots()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("cluster")
    name, url = create_postgres_database()
    redis = RedisServer(root / "redis")
    redis.start()
    settings = Settings(
        data_dir=root / "data",
        database_url=url,
        broker_url=redis.url,
        admin_api_key=ADMIN_KEY,
        outbox_interval_s=0.5,
        model_roots=[tiny_model_dir.parent],
    )
    settings.ensure_directories()
    upgrade_head(url)
    engine = create_db_engine(url)
    try:
        with api_process(settings, root / "api.log") as api:
            yield Cluster(
                settings, redis, api, root, tiny_model_dir, create_session_factory(engine)
            )
    finally:
        engine.dispose()
        redis.stop()
        drop_postgres_database(name)
