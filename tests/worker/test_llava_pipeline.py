"""A job on a llava model: the shared vision tower is updated (with the CLIP loss on request,
through the language model's answers by default), the version holds vision-tower tensors
only, the VLM's answers are measured before and after, and the gate judges those answers."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from catalogue.captions import answer_key
from service.db.session import session_scope
from service.modelling.checkpoints import load_checkpoint
from service.modelling.snapshots import state_sha256
from service.registration.service import register_model
from service.versions.state_chain import version_state
from standin.llava_factory import build_tiny_llava
from tests.worker.harness import FAST, Shots, Stack
from workers.pipeline.runner import Outcome, process_job


@pytest.fixture(scope="module")
def tiny_vlm_dir(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    return build_tiny_llava(tmp_path_factory.mktemp("vlm") / "vlm", tiny_model_dir)


def _register(stack: Stack, tiny_vlm_dir: Path, tiny_model_dir: Path) -> None:
    with session_scope(stack.runtime.session_factory) as session:
        model = register_model(
            session,
            stack.settings,
            name="tiny-vlm",
            base_path=str(tiny_vlm_dir),
            pair_path=str(tiny_model_dir),
            actor="test",
            activation_policy="auto",
        )
        stack.model_id = model.id


def test_a_llava_job_updates_the_tower_and_the_gate_judges_the_answers(
    sqlite_stack: Stack, shots: Shots, tiny_vlm_dir: Path, tiny_model_dir: Path
) -> None:
    stack = sqlite_stack
    _register(stack, tiny_vlm_dir, tiny_model_dir)
    stack.add_eval_set("others", "control", shots.control)
    base_id = stack.active_version_id()
    job_id = stack.submit(
        shots.train, shots.held_out, hyperparameters={**FAST, "objective": "clip"}
    )

    result = process_job(stack.context, job_id)

    assert result.outcome is Outcome.SUCCEEDED
    [base, version] = stack.versions()
    evaluation = version.evaluation
    assert evaluation is not None
    # CLIP space learned the correction...
    assert evaluation.ti is not None and evaluation.ti > 0
    # ...and the answers were measured too, by the VLM sharing the updated tower.
    assert evaluation.answer_ti is not None and evaluation.answer_cc is not None
    [control] = version.set_accuracies
    assert control.answer_accuracy_before is not None
    assert control.answer_accuracy_after is not None
    # The tiny VLM's language model is random: it never says the right label, so the
    # answers did not improve and the auto gate, judging answers, holds the version back.
    assert evaluation.answer_ti == 0.0
    assert not result.activated and stack.active_version_id() == base_id
    assert version.gate_decision is not None
    assert version.gate_decision.reasons[0].startswith("TI +0.00 points")

    # The snapshot holds the vision tower only, and rebuilds exactly.
    checkpoint = load_checkpoint(tiny_vlm_dir, tiny_model_dir)
    base_state = checkpoint.encoder.image_encoder_state()
    assert base_state and all(name.startswith("vision_model.") for name in base_state)
    assert state_sha256(base_state) == base.content_sha256
    with stack.runtime.session_factory() as session:
        state = version_state(session, stack.runtime.blobs, version, base_state)
    assert state_sha256(state) == version.content_sha256
    assert state_sha256(state) != base.content_sha256

    # The stored answer accuracy is what the VLM at that version answers.
    checkpoint.encoder.load_image_encoder_state(state)
    assert checkpoint.generator is not None
    answers = checkpoint.generator.answer(
        [image for image, _ in shots.held_out],
        ["What is in the picture?"] * len(shots.held_out),
        max_tokens=12,
    )
    right = [
        answer_key(answer.text) == answer_key(label)
        for answer, (_, label) in zip(answers, shots.held_out, strict=True)
    ]
    assert evaluation.answer_target_after == pytest.approx(100.0 * sum(right) / len(right))


def test_by_default_a_llava_job_trains_through_the_answers_up_to_the_read_layer(
    sqlite_stack: Stack, shots: Shots, tiny_vlm_dir: Path, tiny_model_dir: Path
) -> None:
    stack = sqlite_stack
    _register(stack, tiny_vlm_dir, tiny_model_dir)
    stack.add_eval_set("others", "control", shots.control)
    job_id = stack.submit(shots.train, shots.held_out)

    result = process_job(stack.context, job_id)

    assert result.outcome is Outcome.SUCCEEDED
    [_, version] = stack.versions()
    assert version.cost is not None
    losses = version.cost.losses
    assert losses[-1] < losses[0]  # the answers' loss (and its anchors) went down
    details = version.cost.method_details
    # The tiny VLM reads hidden state -2 of its two blocks: only the first block is reachable.
    assert len(details["heads_per_layer"]) == 1
    checkpoint = load_checkpoint(tiny_vlm_dir, tiny_model_dir)
    base_state = checkpoint.encoder.image_encoder_state()
    with stack.runtime.session_factory() as session:
        state = version_state(session, stack.runtime.blobs, version, base_state)
    changed = {name for name in state if not torch.equal(state[name], base_state[name])}
    assert changed and all(name.startswith("vision_model.encoder.layers.0.") for name in changed)
