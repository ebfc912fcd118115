"""Structured logs of the worker: one JSON object per line, with the job id of the task.

``job_context(job_id)`` binds the id for everything logged inside it (the engine, SQLAlchemy,
Celery), so a job's whole story can be grepped out of interleaved worker logs.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

_JOB_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("vlmc_job_id", default=None)


@contextmanager
def job_context(job_id: str) -> Iterator[None]:
    """Tag every record logged in this block with ``job_id``."""
    token = _JOB_ID.set(job_id)
    try:
        yield
    finally:
        _JOB_ID.reset(token)


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "message", "job_id"?, "exc"?, ...extra fields}``."""

    _STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        job_id = _JOB_ID.get()
        if job_id is not None:
            entry["job_id"] = job_id
        for key, value in vars(record).items():
            if key not in self._STANDARD and not key.startswith("_"):
                entry[key] = value if isinstance(value, str | int | float | bool) else repr(value)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    """Route the root logger to stderr as JSON (``fmt="json"``) or plain text."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
