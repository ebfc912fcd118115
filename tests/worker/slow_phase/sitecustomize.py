"""Loaded at start-up by a worker process whose PYTHONPATH starts with this directory
(``tests/worker/processes.py: slow_evaluation_env``): every evaluation pass first sleeps
``VLMC_TEST_SLOW_EVALUATION_S`` seconds, a stand-in for a large control set (a slow phase
with no training step). Patched before the runner is imported, so a prefork pool's children
inherit it."""

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
