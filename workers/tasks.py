"""The update task: a thin wrapper around :func:`workers.pipeline.runner.process_job`.

Registered under ``UPDATE_TASK_NAME`` (the API sends it by name with ``args=[job_id]``).
Every outcome is final for this delivery, including ``waiting`` (an earlier job of the same
model has not finished): that job's finish sends this one again, so no message is ever held
back in a worker's memory for it. Only a database outage re-queues the delivery (after
``database_retry_s``; the job row is the truth, so a repeated delivery is harmless).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import DBAPIError

from service.jobs.constants import UPDATE_TASK_NAME
from workers.celery_app import celery_app
from workers.pipeline.settings import get_worker_settings


@celery_app.task(name=UPDATE_TASK_NAME, bind=True, max_retries=None)
def run_update_job(self: Any, job_id: str) -> str:
    """Run one delivery of the update job ``job_id``; returns the outcome's name."""
    # Imported here so importing the task module (the parent of a prefork pool does) loads
    # no model code.
    from workers.pipeline.context import worker_context
    from workers.pipeline.logs import job_context
    from workers.pipeline.runner import process_job

    with job_context(job_id):
        try:
            result = process_job(worker_context(), job_id)
        except DBAPIError as error:
            raise self.retry(exc=error, countdown=get_worker_settings().database_retry_s) from error
    return result.outcome.value
