"""A job through the worker pipeline: from the queued row to a ready, hash-verified version."""

from __future__ import annotations

import torch

from service.modelling.inference import zero_shot_predictions
from service.modelling.loading import load_dual_encoder
from service.modelling.snapshots import state_sha256
from service.versions.state_chain import version_state
from tests.worker.harness import Shots, Stack
from workers.pipeline.runner import Outcome, process_job


def test_a_job_produces_an_exact_version_with_metrics_and_moves_the_pointer(
    stack: Stack, shots: Shots
) -> None:
    stack.add_eval_set("others", "control", shots.control)
    base_id = stack.active_version_id()
    job_id = stack.submit(shots.train, shots.held_out)

    result = process_job(stack.context, job_id)

    assert result.outcome is Outcome.SUCCEEDED and result.activated
    job = stack.job(job_id)
    assert job.status == "succeeded" and job.result_version_id == result.version_id
    assert job.parent_version_id == base_id and job.attempts == 1
    assert job.lease_owner is None and job.progress_step == job.progress_total > 0
    [_base, version] = stack.versions()
    assert (version.id, version.number, version.parent_id) == (result.version_id, 2, base_id)
    assert version.status == "ready" and version.job_id == job_id
    assert stack.active_version_id() == version.id
    [_initial, gate] = stack.deployments()
    assert (gate.from_version_id, gate.to_version_id, gate.action) == (base_id, version.id, "gate")

    evaluation = version.evaluation
    assert evaluation is not None and evaluation.held_out_examples == len(shots.held_out)
    before, after = evaluation.target_accuracy_before, evaluation.target_accuracy_after
    assert before is not None and after is not None
    assert evaluation.ti == after - before and evaluation.ti > 0
    assert evaluation.ti_source == "held_out"
    [control] = version.set_accuracies
    assert (control.set_name, control.kind) == ("others", "control")
    assert evaluation.cc == control.accuracy_after - control.accuracy_before
    assert version.cost is not None and version.cost.trainable_parameters > 0
    assert version.cost.steps == len(version.cost.losses) > 0
    assert version.cost.method_details["heads_per_layer"]
    gate = version.gate_decision
    assert gate is not None and (gate.policy, gate.threshold, gate.activated) == (
        "always",
        1.0,
        True,
    )
    assert gate.reasons

    # The stored delta rebuilds exactly the weights the worker trained, from the base.
    encoder = load_dual_encoder(stack.job_model_base_path())
    with stack.runtime.session_factory() as session:
        state = version_state(session, stack.runtime.blobs, version, encoder.image_encoder_state())
    assert state_sha256(state) == version.content_sha256
    encoder.load_image_encoder_state(state)
    names = sorted({label for _, label in shots.held_out})
    predictions = zero_shot_predictions(encoder, [image for image, _ in shots.held_out], names)
    targets = torch.tensor([names.index(label) for _, label in shots.held_out])
    assert float((predictions == targets).double().mean() * 100) == after

    statuses = [e.data["status"] for e in stack.events(job_id) if e.type == "status"]
    assert statuses == ["queued", "running", "evaluating", "succeeded"]
    # Each phase the attempt went through is an event, in order (the gate is part of storing).
    phases = [e.data["phase"] for e in stack.events(job_id) if e.type == "phase"]
    assert phases == [
        "loading",
        "evaluating_before",
        "training",
        "evaluating_after",
        "storing",
        "done",
    ]
    assert job.phase == "done"
    last_progress = [e.data for e in stack.events(job_id) if e.type == "progress"][-1]
    assert last_progress["phase"] == "training" and last_progress["eta_s"] == 0


def test_a_correction_naming_its_target_set_is_judged_by_that_set_alone(
    stack: Stack, shots: Shots
) -> None:
    """Two target sets: the user's own (images of the corrected labels) and one the
    correction does not touch. Named, TI is the user's set's own TI; each set reports its own."""
    stack.add_eval_set("others", "control", shots.control)
    stack.add_eval_set("mine", "target", shots.held_out)
    stack.add_eval_set("untouched", "target", shots.control)
    job_id = stack.submit(shots.train, target_sets=["mine"])

    assert process_job(stack.context, job_id).outcome is Outcome.SUCCEEDED
    [_base, version] = stack.versions()
    evaluation = version.evaluation
    assert evaluation is not None
    assert (evaluation.ti_source, evaluation.ti_sets) == ("target_sets", ["mine"])
    by_name = {item.set_name: item for item in version.set_accuracies}
    mine = by_name["mine"]
    assert mine.ti == mine.accuracy_after - mine.accuracy_before  # all its labels corrected
    assert evaluation.ti == mine.ti and evaluation.ti > 0
    assert by_name["untouched"].ti is not None and by_name["others"].ti is None
