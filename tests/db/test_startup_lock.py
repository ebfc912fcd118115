"""Several API processes starting at once on one database: the startup lock lets one of them
migrate (and seed) at a time, across processes, on SQLite and on PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import inspect

from service.db.migrate import startup_lock
from service.db.session import create_db_engine

_WAIT_AND_MIGRATE = """
import sys, time
from service.db.migrate import startup_lock, upgrade_head
started = time.monotonic()
with startup_lock(sys.argv[1]):
    waited = time.monotonic() - started
    upgrade_head(sys.argv[1])
print(waited)
"""


def _start_other_process(database_url: str) -> subprocess.Popen[str]:
    repo = Path(__file__).resolve().parents[2]
    return subprocess.Popen(
        [sys.executable, "-c", _WAIT_AND_MIGRATE, database_url],
        cwd=repo,
        stdout=subprocess.PIPE,
        text=True,
        env={"PYTHONPATH": str(repo), "PATH": "/usr/bin:/bin"},
    )


def test_another_process_waits_for_the_lock_then_finds_the_schema(database_url: str) -> None:
    with startup_lock(database_url):
        other = _start_other_process(database_url)
        time.sleep(3.0)  # the other process is blocked on the lock meanwhile
        assert other.poll() is None
    output, _ = other.communicate(timeout=120)
    assert other.returncode == 0
    assert float(output.strip()) > 1.0  # it waited for this process to let go
    engine = create_db_engine(database_url)
    try:
        assert "versions" in inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_processes_starting_together_on_a_fresh_sqlite_database_all_succeed(
    tmp_path: Path,
) -> None:
    database_url = f"sqlite:///{tmp_path / 'fresh.sqlite'}"
    others = [_start_other_process(database_url) for _ in range(3)]
    for other in others:
        other.communicate(timeout=180)
        assert other.returncode == 0
