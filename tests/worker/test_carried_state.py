"""State a method carries between versions (KeepLoRA's subspace) is stored and handed on."""

from __future__ import annotations

from service.modelling.snapshots import deserialize_state
from tests.worker.harness import Shots, Stack
from workers.pipeline.runner import Outcome, process_job

KEEPLORA = {"learning_rate": 1e-3, "epochs": 2, "batch_size": 8}


def test_keeplora_subspace_is_stored_with_the_version_and_used_by_the_next_job(
    stack: Stack, shots: Shots
) -> None:
    first = process_job(
        stack.context,
        stack.submit(shots.train, shots.held_out, method="keeplora", hyperparameters=KEEPLORA),
    )
    assert first.outcome is Outcome.SUCCEEDED
    lorsu = process_job(stack.context, stack.submit(shots.train, shots.held_out))
    assert lorsu.outcome is Outcome.SUCCEEDED
    second = process_job(
        stack.context,
        stack.submit(shots.train, shots.held_out, method="keeplora", hyperparameters=KEEPLORA),
    )
    assert second.outcome is Outcome.SUCCEEDED
    [_base, v_first, v_lorsu, v_second] = stack.versions()

    stored = v_first.metrics["carried_state"]["keeplora"]
    basis = deserialize_state(stack.runtime.blobs.get(stored))
    first_sizes = v_first.metrics["cost"]["details"]["basis_dims_after"]
    assert {key: int(t.shape[1]) for key, t in basis.items()} == first_sizes
    # A version made by another method inherits the carried state unchanged ...
    assert v_lorsu.metrics["carried_state"] == {"keeplora": stored}
    # ... and the next KeepLoRA job starts from it, not from a fresh subspace.
    assert v_second.metrics["cost"]["details"]["basis_dims_before"] == first_sizes
    assert v_second.metrics["carried_state"]["keeplora"] != stored
