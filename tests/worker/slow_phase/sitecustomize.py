"""Loaded at start-up by a worker process whose PYTHONPATH starts with this directory
(``tests/worker/processes.py``): slow phases made on purpose, patched before the runner is
imported (so a prefork pool's children inherit them).

- ``slow_evaluation_env``: every evaluation pass first sleeps ``VLMC_TEST_SLOW_EVALUATION_S``
  seconds, a stand-in for a large control set (a slow phase with no training step);
- ``slow_claim_env``: see below."""

import os
import time
from typing import Any

_DELAY_S = float(os.environ.get("VLMC_TEST_SLOW_EVALUATION_S", "0"))

if _DELAY_S > 0:
    from workers.pipeline import evaluation

    _measure = evaluation.measure

    def _slow_measure(*args: Any, **kwargs: Any) -> Any:
        time.sleep(_DELAY_S)
        return _measure(*args, **kwargs)

    evaluation.measure = _slow_measure  # type: ignore[assignment]

# While the file ``VLMC_TEST_SLOW_CLAIM_FILE`` exists, every claim first writes
# ``<file>.<pid>`` (holding the job id) and sleeps ``VLMC_TEST_SLOW_CLAIM_S`` seconds: the
# window between a worker receiving a job's message and claiming the job, made wide enough
# to kill the worker inside it.
_CLAIM_FLAG = os.environ.get("VLMC_TEST_SLOW_CLAIM_FILE", "")
_CLAIM_DELAY_S = float(os.environ.get("VLMC_TEST_SLOW_CLAIM_S", "0"))

if _CLAIM_FLAG and _CLAIM_DELAY_S > 0:
    from service.jobs import lifecycle

    _claim_job = lifecycle.claim_job

    def _slow_claim_job(session: Any, job_id: str, *args: Any, **kwargs: Any) -> Any:
        if os.path.exists(_CLAIM_FLAG):
            with open(f"{_CLAIM_FLAG}.{os.getpid()}", "w") as marker:
                marker.write(job_id)
            time.sleep(_CLAIM_DELAY_S)
        return _claim_job(session, job_id, *args, **kwargs)

    lifecycle.claim_job = _slow_claim_job  # type: ignore[assignment]
