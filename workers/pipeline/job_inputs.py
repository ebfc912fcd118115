"""Everything a claimed job trains and evaluates with, read in the attempt's load phase."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from sqlalchemy.orm import Session

from catalogue.captions import answer_key
from service.modelling.dual_encoder import DualEncoder
from service.modelling.examples import ImageExample
from service.modelling.snapshots import deserialize_state
from service.modelling.vlm import VisionLanguageModel
from service.registry import repository as registry_repository
from service.versions import repository as versions_repository
from workers.pipeline.claimed import ClaimedJob
from workers.pipeline.context import WorkerContext
from workers.pipeline.evaluation import (
    EvaluationPlan,
    build_plan,
    split_control_sets,
    without_trained_images,
)
from workers.pipeline.phases import AttemptFailed
from workers.pipeline.replay import replayed_examples
from workers.pipeline.stored_inputs import correction_examples, model_eval_sets


@dataclass
class JobInputs:
    """Everything a claimed job trains and evaluates with."""

    encoder: DualEncoder
    # Generative models: the VLM sharing ``encoder``'s vision tower (None for dual encoders).
    generator: VisionLanguageModel | None
    parent_state: dict[str, torch.Tensor]
    # The model's base image-encoder weights (what "anchor_reference": "base" distils towards).
    base_state: dict[str, torch.Tensor]
    trained: list[ImageExample]
    negatives: list[str]
    plan: EvaluationPlan
    # Per method, state a method carries from version to version (KeepLoRA's subspace),
    # and the blob each was stored in; inherited through versions made by other methods.
    carried_states: dict[str, dict[str, torch.Tensor]]
    carried_state_blobs: dict[str, str]
    # The anchor halves of the control sets (CC is measured on the other halves).
    anchors: list[ImageExample]
    # The earlier corrections' examples, when the job replays them (held as corrected).
    replayed: list[ImageExample]
    # A generative model's answer naming each label, where its eval sets or the correction
    # say it ("What is in the picture?" / "A cat."): what its label examples are taught.
    known_answers: dict[str, str]
    # Evaluation images the job also trains on, left out of TI and CC.
    left_out_of_evaluation: int = 0


def read_job_inputs(context: WorkerContext, session: Session, job: ClaimedJob) -> JobInputs:
    """The parent's weights (cached), the correction's examples, the model's evaluation sets
    split into measured halves and anchors, and the states methods carry forward.
    ``AttemptFailed`` when the model or its active version is gone."""
    model = registry_repository.get(session, job.model_id)
    if model is None:
        raise AttemptFailed("model_not_found", f"model {job.model_id} no longer exists")
    if job.parent_version_id is None:
        raise AttemptFailed("no_active_version", f"model {model.name} has no active version")
    parent = versions_repository.get(session, job.parent_version_id)
    assert parent is not None  # the active pointer's foreign key
    encoder, parent_state = context.weights.encoder_at(session, context.blobs, model, parent)
    generator = context.weights.checkpoint(model).generator
    correction = correction_examples(session, context.blobs, job.correction_id)
    eval_sets = model_eval_sets(session, context.blobs, model.id)
    trained, held_out = correction.trained, correction.held_out
    own_labels = {example.label for example in trained + held_out if example.label is not None}
    # The model's other known labels are negatives: a one-class correction still has
    # something to be contrasted against, and the target accuracy asks "which known class".
    known = {e.label for s in eval_sets for e in s.examples() if e.label is not None}
    negatives = sorted(known - own_labels)
    measured_sets, anchors = split_control_sets(eval_sets)
    measured_sets, left_out = without_trained_images(measured_sets, trained)
    replayed = (
        replayed_examples(session, context.blobs, parent)
        if job.hyperparameters.anchor_replay
        else []
    )
    plan = build_plan(
        trained,
        held_out,
        negatives,
        measured_sets,
        job.hyperparameters.template,
        named_target_sets=correction.target_sets,
    )
    carried_state_blobs = {state.method: state.blob_sha256 for state in parent.carried_states}
    carried_states = {
        method: deserialize_state(context.blobs.get(sha256))
        for method, sha256 in carried_state_blobs.items()
    }
    known_answers = answers_naming_labels(
        [*trained, *held_out, *(e for s in eval_sets for e in s.examples())]
    )
    return JobInputs(
        left_out_of_evaluation=left_out,
        known_answers=known_answers,
        encoder=encoder,
        generator=generator,
        parent_state=parent_state,
        base_state=context.weights.base_state(model),
        trained=trained,
        negatives=negatives,
        plan=plan,
        carried_states=carried_states,
        carried_state_blobs=carried_state_blobs,
        anchors=anchors,
        replayed=replayed,
    )


def answers_naming_labels(examples: list[ImageExample]) -> dict[str, str]:
    """label (as ``answer_key`` compares it) -> the first answer among ``examples`` that names
    it to a "what is shown" question ("What is in the picture?" / "A cat." -> {"cat": "A
    cat."})."""
    answers: dict[str, str] = {}
    for example in examples:
        if example.label is None and example.answer is not None:
            label = example.taught_label()
            if label is not None:
                answers.setdefault(answer_key(label), example.answer.strip())
    return answers
