"""State a method carries between versions (KeepLoRA's subspace) is stored and handed on."""

from __future__ import annotations

from typing import Any

from service.db.tables import Version
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

    def carried(version: Version) -> dict[str, str]:
        return {state.method: state.blob_sha256 for state in version.carried_states}

    def details(version: Version) -> dict[str, Any]:
        assert version.cost is not None
        return version.cost.method_details

    stored = carried(v_first)["keeplora"]
    basis = deserialize_state(stack.runtime.blobs.get(stored))
    first_sizes = details(v_first)["basis_dims_after"]
    assert {key: int(t.shape[1]) for key, t in basis.items()} == first_sizes
    # A version made by another method inherits the carried state unchanged ...
    assert carried(v_lorsu) == {"keeplora": stored}
    # ... and the next KeepLoRA job starts from it, not from a fresh subspace.
    assert details(v_second)["basis_dims_before"] == first_sizes
    assert carried(v_second)["keeplora"] != stored
