"""The API's broker producer: a bare Celery app used only to ``send_task`` by name.

It has no tasks and imports no worker code, so the API process stays free of training code.
``ping`` backs the broker check of /readyz.
"""

from __future__ import annotations

from typing import Any

from celery import Celery


class Broker:
    """Sends task messages to the configured broker (Redis or a serverless kombu transport)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.app = Celery("vlmc-producer", broker=url, set_as_current=False)
        self.app.conf.update(
            task_serializer="json",
            accept_content=["json"],
            broker_connection_retry_on_startup=False,
            # Fail fast when the broker is down: the outbox keeps the message for the next sweep.
            broker_transport_options={"max_retries": 1, "interval_start": 0, "interval_step": 0.2},
        )

    def send(self, task_name: str, args: list[Any], queue: str) -> None:
        """Publish one task message; raises when the broker cannot be reached."""
        self.app.send_task(task_name, args=args, queue=queue, retry=False)

    def ping(self) -> None:
        """Raise unless a connection to the broker can be opened now."""
        with self.app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, timeout=2)

    def close(self) -> None:
        self.app.close()
