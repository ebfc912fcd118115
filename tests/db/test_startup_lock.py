"""Several API processes starting at once on one database: the startup lock lets one of them
migrate (and seed) at a time, across processes, on SQLite and on PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import inspect, make_url, text

from service.db.migrate import startup_lock
from service.db.session import create_db_engine

# Prints when it got the lock, on the machine-wide monotonic clock the test reads too.
_WAIT_AND_MIGRATE = """
import sys, time
from service.db.migrate import startup_lock, upgrade_head
with startup_lock(sys.argv[1]):
    acquired = time.monotonic()
    upgrade_head(sys.argv[1])
print(acquired)
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


def _waits_for_the_lock(database_url: str, pid: int) -> bool:
    """Whether the startup lock has a waiter: on PostgreSQL an advisory lock of this database
    not granted yet, on SQLite process ``pid`` blocked on a file lock (``/proc/locks``)."""
    if make_url(database_url).get_backend_name() == "postgresql":
        engine = create_db_engine(database_url)
        try:
            with engine.connect() as connection:
                waiting = connection.execute(
                    text(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                        "AND NOT granted AND database = "
                        "(SELECT oid FROM pg_database WHERE datname = current_database())"
                    )
                ).scalar_one()
        finally:
            engine.dispose()
        return bool(waiting)
    # A blocked request reads "<n>: -> FLOCK  ADVISORY  WRITE <pid> <device:inode> 0 EOF".
    blocked = [line.split() for line in Path("/proc/locks").read_text().splitlines()]
    return any(f[1:3] == ["->", "FLOCK"] and f[5] == str(pid) for f in blocked if len(f) > 5)


def test_another_process_waits_for_the_lock_then_finds_the_schema(database_url: str) -> None:
    with startup_lock(database_url):
        other = _start_other_process(database_url)
        deadline = time.monotonic() + 120
        while not _waits_for_the_lock(database_url, other.pid):
            assert other.poll() is None, "the other process ended while this one held the lock"
            assert time.monotonic() < deadline, "the other process never waited for the lock"
            time.sleep(0.05)
        assert other.poll() is None
        released = time.monotonic()  # the lock is released right after this
    output, _ = other.communicate(timeout=120)
    assert other.returncode == 0
    assert float(output.strip()) > released  # it got the lock only once this process let go
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
