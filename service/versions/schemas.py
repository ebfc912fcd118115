"""Request and response bodies of versions, activation, rollback and deployments."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from service.db.tables import Deployment, Version
from service.db.values import (
    ActivationPolicy,
    DeploymentAction,
    EvalSetKind,
    StopReason,
    TISource,
    VersionStatus,
)
from service.validation import Note, VersionRef


class _Record(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class SetAccuracyOut(_Record):
    """Accuracy (percent) on one of the model's evaluation sets, before and after the update."""

    set_name: str
    kind: EvalSetKind = Field(
        description="control: must not regress (gives CC); target: should improve"
    )
    accuracy_before: float
    accuracy_after: float
    answer_accuracy_before: float | None = Field(
        default=None, description="generative models: by the generated answers, percent"
    )
    answer_accuracy_after: float | None = Field(
        default=None, description="generative models: by the generated answers, percent"
    )
    ti: float | None = Field(
        default=None,
        description="target sets: this set's own TI, on its images of the corrected labels "
        "when it holds any, else on the whole set; None for control sets",
    )
    answer_ti: float | None = Field(
        default=None, description="generative models: the set's own TI by the generated answers"
    )


class EvaluationOut(_Record):
    """How the update changed accuracy, in accuracy points (after minus before)."""

    ti: float | None = Field(
        description="target improvement; None when nothing measured it (see ti_source)"
    )
    cc: float | None = Field(
        description="control change: mean over control sets; None without control sets"
    )
    ti_source: TISource = Field(
        description="held_out: examples kept out of training (the correction's eval_examples "
        "or its held-out share); target_sets: the mean over ti_sets (the target sets the "
        "correction named, or the model's target sets for a correction without held-out "
        "examples); none: no TI. Never eval_examples, which only a correction names"
    )
    ti_sets: list[str] = Field(
        default_factory=list,
        description="the target sets ti is the mean over: those the correction named, else "
        "those holding the corrected labels, else all; empty when ti comes from held-out "
        "examples or is not measured",
    )
    held_out_examples: int = Field(description="examples of the correction kept out of training")
    target_accuracy_before: float | None = Field(description="on the held-out examples, percent")
    target_accuracy_after: float | None = Field(description="on the held-out examples, percent")
    answer_ti: float | None = Field(
        default=None,
        description="generative (llava) models: TI by the generated answers (normalised exact "
        "match), measured like ti; the gate uses it for such models",
    )
    answer_cc: float | None = Field(
        default=None, description="generative models: CC by the generated answers"
    )
    answer_target_accuracy_before: float | None = Field(
        default=None, description="generative models: held-out examples answered right, percent"
    )
    answer_target_accuracy_after: float | None = Field(
        default=None, description="generative models: held-out examples answered right, percent"
    )
    sets: list[SetAccuracyOut]


class CostOut(_Record):
    """What the update cost."""

    device: str
    examples: int = Field(description="examples trained on")
    steps: int = Field(description="optimizer steps")
    trainable_parameters: int
    optimizer_state_bytes: int
    peak_memory_bytes: int
    added_memory_bytes: int = Field(description="peak memory above what the model held before")
    train_seconds: float
    total_seconds: float
    losses: list[float] = Field(description="training loss per optimizer step")
    stop_reason: StopReason = Field(
        description="why training ended: the planned steps (epochs, max_steps), the "
        "correction's examples learned (stop_margin), or the anchors' drift budget"
    )
    anchors: int = Field(description="control images training used as anchors")
    anchor_drift: float | None = Field(
        description="mean 1 - cos of the anchors' embeddings after the update vs the parent"
    )
    phase_seconds: dict[str, float] = Field(
        description="seconds per job phase: load, evaluate_before, train, evaluate_after, store"
    )
    method_details: dict[str, Any] = Field(
        description="method-specific facts: heads chosen per layer, fc1 entries, ranks kept"
    )


class GateDecisionOut(_Record):
    """What the activation gate decided when the version was made, and why."""

    policy: ActivationPolicy
    threshold: float = Field(description="CC threshold of the auto policy, accuracy points")
    activated: bool
    reasons: list[str]
    decided_at: datetime


class VersionOut(BaseModel):
    """An immutable version of the model's image encoder, with what its update measured.

    ``evaluation``, ``cost`` and ``gate`` are None for version 1 (the base checkpoint).
    """

    id: str
    model_id: str
    number: int
    parent_id: str | None
    job_id: str | None
    method: str
    data_hash: str | None
    content_sha256: str
    snapshot_sha256: str | None
    checkpoint_sha256: str | None = Field(
        description="blob of the full image-encoder state, stored every few versions so that "
        "loading any version replays a bounded number of deltas"
    )
    evaluation: EvaluationOut | None
    cost: CostOut | None
    gate: GateDecisionOut | None
    carried_state_methods: list[str] = Field(
        description="methods whose carried state (e.g. KeepLoRA's subspace) this version holds"
    )
    status: VersionStatus
    active: bool
    created_at: datetime
    archived_at: datetime | None = Field(
        description="when the version was archived (it no longer serves; its blobs may be "
        "collected); None: retained"
    )

    @classmethod
    def of(cls, version: Version, active_id: str | None) -> VersionOut:
        return cls(
            id=version.id,
            model_id=version.model_id,
            number=version.number,
            parent_id=version.parent_id,
            job_id=version.job_id,
            method=version.method,
            data_hash=version.data_hash,
            content_sha256=version.content_sha256,
            snapshot_sha256=version.snapshot_sha256,
            checkpoint_sha256=version.checkpoint_sha256,
            evaluation=_evaluation(version),
            cost=CostOut.model_validate(version.cost) if version.cost else None,
            gate=(
                GateDecisionOut.model_validate(version.gate_decision)
                if version.gate_decision
                else None
            ),
            carried_state_methods=[state.method for state in version.carried_states],
            status=version.status,
            active=version.id == active_id,
            created_at=version.created_at,
            archived_at=version.archived_at,
        )


def _evaluation(version: Version) -> EvaluationOut | None:
    record = version.evaluation
    if record is None:
        return None
    return EvaluationOut(
        ti=record.ti,
        cc=record.cc,
        ti_source=record.ti_source,
        ti_sets=list(record.ti_sets or []),
        held_out_examples=record.held_out_examples,
        target_accuracy_before=record.target_accuracy_before,
        target_accuracy_after=record.target_accuracy_after,
        answer_ti=record.answer_ti,
        answer_cc=record.answer_cc,
        answer_target_accuracy_before=record.answer_target_before,
        answer_target_accuracy_after=record.answer_target_after,
        sets=[SetAccuracyOut.model_validate(item) for item in version.set_accuracies],
    )


class PointerMove(BaseModel):
    """Body of activate and rollback."""

    version_id: VersionRef = Field(description="the version's id, or its number (1, 2, ...)")
    reason: Note = Field(default="", max_length=2000)


class DeploymentOut(BaseModel):
    id: int
    model_id: str
    from_version_id: str | None
    to_version_id: str
    action: DeploymentAction
    actor: str
    reason: str
    created_at: datetime

    @classmethod
    def of(cls, deployment: Deployment) -> DeploymentOut:
        return cls.model_validate(deployment, from_attributes=True)
