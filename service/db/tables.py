"""Every table of the service (one module, so Alembic and both processes see one schema).

Invariants the database itself enforces (not just the code):
- exactly one active version per model: ``active_versions`` has one row per model (primary key
  ``model_id``) and a composite foreign key to ``versions(model_id, id)``, so the pointer can
  only name a version *of that model*;
- one version per job (``uq_versions_job_id``) and one number per model;
- the deployment history and job events are append-only (no code path updates them);
- an Idempotency-Key is unique per model;
- a column holding a closed set of values (a status, kind, action, policy, family, TI source,
  stop reason, the scopes of a key) holds only its Enum's values: a CHECK constraint derived
  from the Enum, which each domain defines in a module importing nothing but ``enum``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from service.db.base import Base, StrEnumList, StrEnumText, UTCDateTime, new_id, utcnow
from service.db.values import (
    VERSION_TI_SOURCES,
    ActivationPolicy,
    AnswerKind,
    DeploymentAction,
    EvalSetKind,
    InboxStatus,
    JobEventType,
    JobPhase,
    JobStatus,
    ModelFamily,
    Scope,
    StopReason,
    TISource,
    VersionStatus,
)

# Integer primary keys that autoincrement on SQLite too (BIGINT does not alias ROWID there).
AutoId = BigInteger().with_variant(Integer(), "sqlite")


def _in(column: str, values: Iterable[str]) -> str:
    return f"{column} IN ({', '.join(repr(str(v)) for v in values)})"


def _only(column: str, values: Iterable[str]) -> str:
    """A JSON list column holds nothing but ``values``: removing each quoted value, then the
    commas and spaces, from its text leaves ``[]``. (Checking each element with the JSON
    functions would need a subquery, which neither SQLite nor PostgreSQL allows in a CHECK
    constraint.)"""
    text = f"CAST({column} AS TEXT)"
    for value in values:
        text = f"replace({text}, '\"{value}\"', '')"
    return f"replace(replace({text}, ',', ''), ' ', '') = '[]'"


class Model(Base):
    """A deployed model: a base checkpoint, its family and its activation policy."""

    __tablename__ = "models"
    __table_args__ = (
        UniqueConstraint("name"),
        CheckConstraint(_in("family", ModelFamily), name="family"),
        CheckConstraint(_in("activation_policy", ActivationPolicy), name="activation_policy"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    family: Mapped[ModelFamily] = mapped_column(StrEnumText(ModelFamily, 50))
    base_path: Mapped[str] = mapped_column(Text)
    # ``llava`` models: the CLIP-style checkpoint whose text tower pairs with the VLM's vision
    # tower (the CLIP loss needs one), and whether the two towers' weights were equal at
    # registration. None for dual encoders.
    pair_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    vision_towers_equal: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    activation_policy: Mapped[ActivationPolicy] = mapped_column(
        StrEnumText(ActivationPolicy, 20), default=ActivationPolicy.AUTO
    )
    activation_threshold: Mapped[float] = mapped_column(Float, default=1.0)
    # The mistakes inbox: whether serving keeps what a later correction needs of each answer
    # (off by default: nothing is written on the inference path), and for how long.
    feedback_capture: Mapped[bool] = mapped_column(Boolean, default=False)
    feedback_retention_hours: Mapped[int] = mapped_column(Integer, default=168)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApiKey(Base):
    """An API key, stored as its sha256 only; ``prefix`` identifies it in listings."""

    __tablename__ = "api_keys"
    __table_args__ = (
        UniqueConstraint("key_sha256"),
        CheckConstraint(_only("scopes", Scope), name="scopes"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16))
    key_sha256: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[Scope]] = mapped_column(StrEnumList(Scope))
    # The models this key may see and act on; NULL: every model (admin keys are never
    # restricted).
    model_ids: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class EvalSet(Base):
    """A labelled evaluation set of a model: ``control`` (must not regress) or ``target``."""

    __tablename__ = "eval_sets"
    __table_args__ = (
        UniqueConstraint("model_id", "name"),
        CheckConstraint(_in("kind", EvalSetKind), name="kind"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    model_id: Mapped[str] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[EvalSetKind] = mapped_column(StrEnumText(EvalSetKind, 20))
    # A control set's own limit (accuracy points it may lose) for the auto gate; None: only
    # the model's threshold on the mean (CC) applies.
    max_drop: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class EvalSetItem(Base):
    """One labelled image of an evaluation set (the image is a blob); with a ``question``, the
    label is that question's right answer."""

    __tablename__ = "eval_set_items"
    __table_args__ = (UniqueConstraint("eval_set_id", "position"),)

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    eval_set_id: Mapped[str] = mapped_column(ForeignKey("eval_sets.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    image_sha256: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(200))
    question: Mapped[str | None] = mapped_column(Text, nullable=True)


class Correction(Base):
    """A few-shot correction batch; ``data_hash`` identifies its content exactly."""

    __tablename__ = "corrections"
    __table_args__ = (CheckConstraint(_in("ti_source", TISource), name="ti_source"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    model_id: Mapped[str] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    data_hash: Mapped[str] = mapped_column(String(64))
    num_examples: Mapped[int] = mapped_column(Integer)
    num_held_out: Mapped[int] = mapped_column(Integer)
    # What TI will be measured on (decided at submission).
    ti_source: Mapped[TISource] = mapped_column(
        StrEnumText(TISource, 20), default=TISource.HELD_OUT
    )
    # The model's target eval sets the correction is meant to fix (by name; empty: none named).
    # When named, TI is the mean over these sets only, and the gate judges by them.
    target_sets: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CorrectionExample(Base):
    """One example: an image blob with a label, or with a question and its answer.

    ``held_out`` examples are never trained on; they measure TI.
    """

    __tablename__ = "correction_examples"
    __table_args__ = (
        UniqueConstraint("correction_id", "position"),
        CheckConstraint(
            "(label IS NOT NULL) OR (question IS NOT NULL AND answer IS NOT NULL)",
            name="label_or_qa",
        ),
    )

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    correction_id: Mapped[str] = mapped_column(ForeignKey("corrections.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    image_sha256: Mapped[str] = mapped_column(String(64))
    label: Mapped[str | None] = mapped_column(String(200), nullable=True)
    question: Mapped[str | None] = mapped_column(Text, nullable=True)
    answer: Mapped[str | None] = mapped_column(Text, nullable=True)
    held_out: Mapped[bool] = mapped_column(Boolean, default=False)


class Answer(Base):
    """A served answer kept while its model captures feedback: the request's image (a blob),
    what was asked, what was answered and by which version. Flagged with the right answer
    (``status`` set), it is an item of the model's mistakes inbox.

    Unflagged answers, and items used or dismissed, are deleted after ``expires_at`` by the
    storage collection (``service/retention``); open items stay until used or dismissed.
    """

    __tablename__ = "answers"
    __table_args__ = (
        CheckConstraint(_in("kind", AnswerKind), name="kind"),
        CheckConstraint(_in("status", InboxStatus), name="status"),
        CheckConstraint(
            "(labels IS NOT NULL) OR (question IS NOT NULL)", name="labels_or_question"
        ),
        Index("ix_answers_model_id_flagged_at", "model_id", "flagged_at"),
        Index("ix_answers_expires_at", "expires_at"),
    )

    # The id the response carried (``service/answers/ids.py``).
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    model_id: Mapped[str] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    kind: Mapped[AnswerKind] = mapped_column(StrEnumText(AnswerKind, 20))
    version_id: Mapped[str] = mapped_column(String(36))
    version_number: Mapped[int] = mapped_column(Integer)
    image_sha256: Mapped[str] = mapped_column(String(64))
    # classify: the candidate labels and caption template; chat: the question.
    labels: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    template: Mapped[str | None] = mapped_column(Text, nullable=True)
    question: Mapped[str | None] = mapped_column(Text, nullable=True)
    served: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Set by feedback: the right label (classify) or answer (chat).
    right_answer: Mapped[str | None] = mapped_column(Text, nullable=True)
    flagged_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    status: Mapped[InboxStatus | None] = mapped_column(StrEnumText(InboxStatus, 20), nullable=True)
    correction_id: Mapped[str | None] = mapped_column(
        ForeignKey("corrections.id", ondelete="SET NULL"), nullable=True
    )


class Job(Base):
    """An update job: one correction batch trained into (at most) one new version."""

    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("model_id", "idempotency_key"),
        CheckConstraint(_in("status", JobStatus), name="status"),
        CheckConstraint(_in("phase", JobPhase), name="phase"),
        Index("ix_jobs_model_id_status", "model_id", "status"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    model_id: Mapped[str] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    correction_id: Mapped[str] = mapped_column(ForeignKey("corrections.id", ondelete="CASCADE"))
    status: Mapped[JobStatus] = mapped_column(StrEnumText(JobStatus, 20), default=JobStatus.QUEUED)
    progress_step: Mapped[int] = mapped_column(Integer, default=0)
    progress_total: Mapped[int] = mapped_column(Integer, default=0)
    # When the last step/total was written (the step rate behind the time estimate).
    progress_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    phase: Mapped[JobPhase] = mapped_column(StrEnumText(JobPhase, 20), default=JobPhase.QUEUED)
    # When the job entered its phase (None: queued since it was created).
    phase_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    method: Mapped[str] = mapped_column(String(50))
    hyperparameters: Mapped[dict[str, Any]] = mapped_column(JSON)
    seed: Mapped[int] = mapped_column(Integer, default=0)
    # The version the job trained from (set when it starts: the active version at that time).
    parent_version_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    result_version_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(100), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    lease_owner: Mapped[str | None] = mapped_column(String(200), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    request_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    # What the job trains on and what measures its TI (shown with the job).
    correction: Mapped[Correction] = relationship(lazy="selectin")


class JobEvent(Base):
    """An append-only, typed event of a job (progress, metrics, log, status)."""

    __tablename__ = "job_events"
    __table_args__ = (
        CheckConstraint(_in("type", JobEventType), name="type"),
        Index("ix_job_events_job_id_id", "job_id", "id"),
    )

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    type: Mapped[JobEventType] = mapped_column(StrEnumText(JobEventType, 20))
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Version(Base):
    """An immutable version of a model's image encoder.

    Version 1 is the base checkpoint (no snapshot blob). Every later version stores an exact
    delta from its parent in the blob store (``snapshot_sha256`` = the blob's sha256);
    ``content_sha256`` is ``state_sha256`` of the full image-encoder state it rebuilds to.
    Every few versions the full state is stored too (``checkpoint_sha256``), so rebuilding any
    version replays a bounded number of deltas (``service/versions/state_chain.py``). An
    archived version (``archived_at``) no longer serves and its blobs may be collected.
    """

    __tablename__ = "versions"
    __table_args__ = (
        UniqueConstraint("model_id", "number"),
        # Target of the active pointer's composite foreign key (version must belong to model).
        UniqueConstraint("model_id", "id"),
        UniqueConstraint("job_id"),
        CheckConstraint(_in("status", VersionStatus), name="status"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    model_id: Mapped[str] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("versions.id"), nullable=True)
    job_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id"), nullable=True)
    method: Mapped[str] = mapped_column(String(50))
    data_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    content_sha256: Mapped[str] = mapped_column(String(64))
    snapshot_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # A safetensors blob of the full state (``snapshots.serialize_state``); None: rebuilt
    # from the nearest checkpointed ancestor (or the base checkpoint) and the deltas after it.
    checkpoint_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[VersionStatus] = mapped_column(
        StrEnumText(VersionStatus, 20), default=VersionStatus.PENDING
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    # What the worker recorded with the version (none for the base version). Loaded with the
    # version ("selectin": one query per relation for a whole list of versions).
    evaluation: Mapped[VersionEvaluation | None] = relationship(lazy="selectin")
    set_accuracies: Mapped[list[VersionSetAccuracy]] = relationship(
        lazy="selectin", order_by="VersionSetAccuracy.set_name"
    )
    cost: Mapped[VersionCost | None] = relationship(lazy="selectin")
    gate_decision: Mapped[GateDecision | None] = relationship(lazy="selectin")
    carried_states: Mapped[list[CarriedState]] = relationship(
        lazy="selectin", order_by="CarriedState.method"
    )


class VersionEvaluation(Base):
    """TI and CC of a version (accuracy points; after minus before its update)."""

    __tablename__ = "version_evaluations"
    __table_args__ = (CheckConstraint(_in("ti_source", VERSION_TI_SOURCES), name="ti_source"),)

    version_id: Mapped[str] = mapped_column(
        ForeignKey("versions.id", ondelete="CASCADE"), primary_key=True
    )
    ti: Mapped[float | None] = mapped_column(Float, nullable=True)
    cc: Mapped[float | None] = mapped_column(Float, nullable=True)
    ti_source: Mapped[TISource] = mapped_column(StrEnumText(TISource, 20))
    held_out_examples: Mapped[int] = mapped_column(Integer, default=0)
    target_accuracy_before: Mapped[float | None] = mapped_column(Float, nullable=True)
    target_accuracy_after: Mapped[float | None] = mapped_column(Float, nullable=True)
    # Generative (llava) models: the same figures from generated answers (normalised exact
    # match); the gate uses these for such models. None for dual encoders.
    answer_ti: Mapped[float | None] = mapped_column(Float, nullable=True)
    answer_cc: Mapped[float | None] = mapped_column(Float, nullable=True)
    answer_target_before: Mapped[float | None] = mapped_column(Float, nullable=True)
    answer_target_after: Mapped[float | None] = mapped_column(Float, nullable=True)
    # The target sets TI is the mean over (the correction's named ones, else every target set
    # that measured it); empty when TI comes from held-out examples or was not measured.
    ti_sets: Mapped[list[str]] = mapped_column(JSON, default=list)


class VersionSetAccuracy(Base):
    """Accuracy (percent) on one evaluation set of the model, before and after the update."""

    __tablename__ = "version_set_accuracies"
    __table_args__ = (CheckConstraint(_in("kind", EvalSetKind), name="kind"),)

    version_id: Mapped[str] = mapped_column(
        ForeignKey("versions.id", ondelete="CASCADE"), primary_key=True
    )
    set_name: Mapped[str] = mapped_column(String(200), primary_key=True)
    kind: Mapped[EvalSetKind] = mapped_column(StrEnumText(EvalSetKind, 20))
    accuracy_before: Mapped[float] = mapped_column(Float)
    accuracy_after: Mapped[float] = mapped_column(Float)
    # Generative models: answer accuracy (percent) on the same images.
    answer_accuracy_before: Mapped[float | None] = mapped_column(Float, nullable=True)
    answer_accuracy_after: Mapped[float | None] = mapped_column(Float, nullable=True)
    # Target sets: this set's own TI (on its images of the corrected labels when it holds any,
    # else on the whole set), and by the generated answers for a generative model.
    ti: Mapped[float | None] = mapped_column(Float, nullable=True)
    answer_ti: Mapped[float | None] = mapped_column(Float, nullable=True)


class VersionCost(Base):
    """What the update that made a version cost."""

    __tablename__ = "version_costs"
    __table_args__ = (CheckConstraint(_in("stop_reason", StopReason), name="stop_reason"),)

    version_id: Mapped[str] = mapped_column(
        ForeignKey("versions.id", ondelete="CASCADE"), primary_key=True
    )
    device: Mapped[str] = mapped_column(String(50))
    examples: Mapped[int] = mapped_column(Integer)
    steps: Mapped[int] = mapped_column(Integer)
    trainable_parameters: Mapped[int] = mapped_column(BigInteger)
    optimizer_state_bytes: Mapped[int] = mapped_column(BigInteger)
    peak_memory_bytes: Mapped[int] = mapped_column(BigInteger)
    added_memory_bytes: Mapped[int] = mapped_column(BigInteger)
    train_seconds: Mapped[float] = mapped_column(Float)
    total_seconds: Mapped[float] = mapped_column(Float)
    losses: Mapped[list[float]] = mapped_column(JSON, default=list)
    # Why training ended.
    stop_reason: Mapped[StopReason] = mapped_column(
        StrEnumText(StopReason, 20), default=StopReason.PLANNED_STEPS
    )
    anchors: Mapped[int] = mapped_column(Integer, default=0)
    anchor_drift: Mapped[float | None] = mapped_column(Float, nullable=True)
    # Seconds per job phase (load, evaluate_before, train, evaluate_after, store).
    phase_seconds: Mapped[dict[str, float]] = mapped_column(JSON, default=dict)
    # Method-specific facts: heads chosen per layer, fc1 entries, ranks kept, ...
    method_details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class GateDecision(Base):
    """What the activation gate decided for a new version, and why."""

    __tablename__ = "gate_decisions"
    __table_args__ = (CheckConstraint(_in("policy", ActivationPolicy), name="policy"),)

    version_id: Mapped[str] = mapped_column(
        ForeignKey("versions.id", ondelete="CASCADE"), primary_key=True
    )
    policy: Mapped[ActivationPolicy] = mapped_column(StrEnumText(ActivationPolicy, 20))
    threshold: Mapped[float] = mapped_column(Float)
    activated: Mapped[bool] = mapped_column(Boolean)
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CarriedState(Base):
    """State a method carries from version to version (KeepLoRA's subspace), as a blob.

    A version lists every method's latest state in its lineage: its parent's, with the state
    of the method that made it replaced.
    """

    __tablename__ = "carried_states"

    version_id: Mapped[str] = mapped_column(
        ForeignKey("versions.id", ondelete="CASCADE"), primary_key=True
    )
    method: Mapped[str] = mapped_column(String(50), primary_key=True)
    blob_sha256: Mapped[str] = mapped_column(String(64))


class ActiveVersion(Base):
    """The active pointer: one row per model (the primary key makes "exactly one" a DB fact)."""

    __tablename__ = "active_versions"
    __table_args__ = (
        ForeignKeyConstraint(
            ["model_id", "version_id"],
            ["versions.model_id", "versions.id"],
            name="fk_active_versions_model_id_version_id_versions",
        ),
    )

    model_id: Mapped[str] = mapped_column(
        ForeignKey("models.id", ondelete="CASCADE"), primary_key=True
    )
    version_id: Mapped[str] = mapped_column(String(36))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Deployment(Base):
    """One move of the active pointer (append-only history: from, to, who, why, when)."""

    __tablename__ = "deployments"
    __table_args__ = (
        CheckConstraint(_in("action", DeploymentAction), name="action"),
        Index("ix_deployments_model_id_id", "model_id", "id"),
    )

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    model_id: Mapped[str] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    from_version_id: Mapped[str | None] = mapped_column(ForeignKey("versions.id"), nullable=True)
    to_version_id: Mapped[str] = mapped_column(ForeignKey("versions.id"))
    action: Mapped[DeploymentAction] = mapped_column(StrEnumText(DeploymentAction, 20))
    actor: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class OutboxMessage(Base):
    """A broker message written in the same transaction as the row it is about.

    The dispatcher sends undispatched rows after commit and stamps ``dispatched_at``; a broker
    outage leaves them pending (``attempts``/``last_error`` record why) until the next sweep.
    """

    __tablename__ = "outbox_messages"
    __table_args__ = (Index("ix_outbox_messages_dispatched_at_id", "dispatched_at", "id"),)

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    task_name: Mapped[str] = mapped_column(String(200))
    queue: Mapped[str] = mapped_column(String(100))
    args: Mapped[list[Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)


class WorkerHeartbeat(Base):
    """Liveness of a worker process: it upserts ``last_seen_at`` periodically (see /readyz)."""

    __tablename__ = "worker_heartbeats"

    worker_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(200), default="")
    queues: Mapped[list[str]] = mapped_column(JSON, default=list)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    current_job_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    # Since when this worker holds no job (None while it runs one): a queued job that such a
    # worker has not claimed in a while lost its message (service/jobs/sweeps.py).
    idle_since: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
