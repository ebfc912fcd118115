"""One delivery of an update job, from claim to the version (or a clear error).

Order of a successful attempt (each DB step is its own short transaction; the model work
happens outside any transaction):

1. claim: lease the job, fix its parent = the model's active version now (``claim_job``);
   from here until the attempt ends a ``LeaseKeeper`` thread renews the lease, whatever the
   job is doing;
2. load: the parent's weights (base + hash-checked deltas, cached), the correction's examples
   (held-out ones apart) and the model's evaluation sets;
3. evaluate before; train (progress renews the lease; cooperative cancel); ``evaluating``;
   evaluate after; TI / CC;
4. write the exact delta blob (content-addressed, atomic: a crash leaves at most an
   unreferenced blob), then in ONE transaction: re-check the lease and cancel flag, create the
   ready version, apply the activation gate, mark the job succeeded (which also queues the
   model's next job through the outbox);
5. send the outbox now, so the next job starts as soon as a worker is free.

So a version exists only if its job succeeded, each job has at most one (DB constraint), and
the active pointer only ever moves to a ready version. A delivery whose job must wait for an
earlier job of its model ends at once (``WAITING``): the earlier job's finish sends it again.
"""

from __future__ import annotations

import enum
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session

from catalogue.declarations import stored_hyperparameters
from catalogue.hyperparameters import CommonHyperparameters
from service.corrections import repository as corrections_repository
from service.corrections.service import load_correction
from service.db.session import session_scope
from service.db.tables import Job, VersionCost
from service.jobs.lease_keeper import LeaseKeeper
from service.jobs.lifecycle import (
    Lease,
    Refusal,
    append_event,
    claim_job,
    finish_job,
    held_job,
    refusal_reason,
    start_evaluating,
)
from service.jobs.statuses import JobEventType, JobStatus
from service.modelling.dual_encoder import DualEncoder
from service.modelling.examples import ImageExample
from service.modelling.snapshots import SnapshotIntegrityError, deserialize_state, serialize_state
from service.modelling.vlm import VisionLanguageModel
from service.outbox.dispatcher import dispatch_pending
from service.registry import repository as registry_repository
from service.registry.service import load_eval_sets
from service.storage.blobs import BlobCorruptedError, BlobNotFoundError, BlobStore
from service.versions import repository as versions_repository
from service.versions.service import VersionRecords, apply_activation_gate, create_version
from service.versions.state_chain import StoredState, store_version_state
from workers.engine.errors import UpdateCancelled, UpdateError
from workers.engine.update import UpdateReport, run_update
from workers.pipeline import telemetry
from workers.pipeline.context import WorkerContext
from workers.pipeline.evaluation import (
    EvaluationPlan,
    build_plan,
    evaluation_records,
    measure,
    measure_answers,
    split_control_sets,
)
from workers.pipeline.progress import JobProgress, LeaseLost
from workers.pipeline.replay import replayed_examples

logger = logging.getLogger(__name__)


class Outcome(enum.Enum):
    SUCCEEDED = JobStatus.SUCCEEDED.value
    FAILED = JobStatus.FAILED.value
    CANCELLED = JobStatus.CANCELLED.value
    WAITING = "waiting"  # an earlier job of the model runs first; its finish sends this again
    DROPPED = "dropped"  # duplicate or stale delivery: nothing to do
    LEASE_LOST = "lease_lost"  # another worker took the job over mid-run


@dataclass
class JobResult:
    outcome: Outcome
    version_id: str | None = None
    activated: bool = False
    refusal: Refusal | None = None
    error_code: str | None = None


@dataclass(frozen=True)
class ClaimedJob:
    """The fields of a claimed job the worker needs after the claim's transaction ended."""

    id: str
    model_id: str
    correction_id: str
    method: str
    hyperparameters: CommonHyperparameters
    seed: int
    parent_version_id: str | None
    lease: Lease

    @property
    def attempt(self) -> int:
        return self.lease.attempt

    @classmethod
    def of(cls, job: Job) -> ClaimedJob:
        return cls(
            id=job.id,
            model_id=job.model_id,
            correction_id=job.correction_id,
            method=job.method,
            hyperparameters=stored_hyperparameters(job.method, job.hyperparameters),
            seed=job.seed,
            parent_version_id=job.parent_version_id,
            lease=Lease.of(job),
        )


class JobFailure(Exception):
    """A failure with a machine-readable code, recorded on the job."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class _Phases:
    seconds: dict[str, float] = field(default_factory=dict)
    _started: float = field(default_factory=time.perf_counter)

    def done(self, phase: str) -> None:
        now = time.perf_counter()
        self.seconds[phase] = round(now - self._started, 4)
        telemetry.JOB_PHASE_SECONDS.labels(phase).observe(now - self._started)
        self._started = now


def process_job(context: WorkerContext, job_id: str) -> JobResult:
    """Run one delivery of ``job_id`` (see the module docstring); never raises for job errors.

    Database outages do raise (nothing can be recorded): the lease then expires and the
    sweep re-queues the job.
    """
    result = _attempt(context, job_id)
    _send_outbox(context)
    return result


def _attempt(context: WorkerContext, job_id: str) -> JobResult:
    with session_scope(context.session_factory) as session:
        job = claim_job(session, job_id, context.worker_id, context.worker_settings.lease_seconds)
        if job is None:
            refusal = refusal_reason(session, job_id)
            outcome = Outcome.WAITING if refusal is Refusal.WAITING else Outcome.DROPPED
            telemetry.DELIVERIES.labels(outcome.value).inc()
            return JobResult(outcome, refusal=refusal)
        claimed = ClaimedJob.of(job)
    telemetry.DELIVERIES.labels("claimed").inc()
    logger.info(
        "job claimed", extra={"attempt": claimed.attempt, "parent": claimed.parent_version_id}
    )
    started = time.perf_counter()
    lease_seconds = context.worker_settings.lease_seconds
    try:
        with LeaseKeeper(context.session_factory, claimed.lease, lease_seconds):
            result = _run_guarded(context, claimed)
    except LeaseLost as error:
        logger.warning("stopping without writing anything: %s", error)
        result = JobResult(Outcome.LEASE_LOST)
    telemetry.JOB_SECONDS.labels(claimed.method, result.outcome.value).observe(
        time.perf_counter() - started
    )
    logger.info(
        "job attempt ended",
        extra={"outcome": result.outcome.value, "version_id": result.version_id or ""},
    )
    return result


def _run_guarded(context: WorkerContext, claimed: ClaimedJob) -> JobResult:
    """Run a claimed job; a job error or a defect ends it as failed (with the reason)."""
    try:
        return _run_claimed(context, claimed)
    except (JobFailure, UpdateError) as error:
        # An engine error can also come from preparing the inputs (e.g. building the
        # evaluation plan of a single-class batch), not only from training.
        return _finish_failed(context, claimed, error.code, error.message)
    except (DBAPIError, LeaseLost):
        # DBAPIError: nothing can be recorded; the lease expires and the sweep retries
        # the job. LeaseLost: the job is another worker's now (handled by the caller).
        raise
    except Exception as error:  # a defect or an environment fault: say so on the job
        logger.exception("job crashed")
        message = f"{type(error).__name__}: {error}"[:2000]
        return _finish_failed(context, claimed, "worker_error", message)


def _send_outbox(context: WorkerContext) -> None:
    """Send what this attempt's transactions queued (the model's next job, a re-queue)."""
    try:
        dispatch_pending(context.session_factory, context.broker)
    except SQLAlchemyError:  # the database is away: the sweeps and the API's loop send later
        logger.exception("could not send the outbox")


def _run_claimed(context: WorkerContext, job: ClaimedJob) -> JobResult:
    phases = _Phases()
    with context.session_factory() as session:
        inputs = _load(context, session, job)
    encoder, plan = inputs.encoder, inputs.plan
    phases.done("load")
    before = measure(encoder, plan)
    _record_metrics_event(context, job, "before update", before.__dict__)
    answers_before = None
    if inputs.generator is not None:
        answers_before = measure_answers(inputs.generator, plan)
        _record_metrics_event(context, job, "answers before update", answers_before.__dict__)
    if job.hyperparameters.uses_anchors():
        with session_scope(context.session_factory) as session:
            append_event(session, job.id, JobEventType.LOG, anchor_note(inputs.anchors), None)
    phases.done("evaluate_before")

    progress = JobProgress(
        context.session_factory,
        job.lease,
        context.worker_settings.progress_interval_s,
        context.worker_settings.cancel_poll_s,
    )
    try:
        outcome = run_update(
            encoder,
            inputs.trained,
            method=job.method,
            hyperparameters=job.hyperparameters,
            seed=job.seed,
            device=context.settings.device,
            negative_labels=inputs.negatives,
            carried_state=inputs.carried_states.get(job.method),
            on_progress=progress.on_progress,
            should_cancel=progress.should_cancel,
            anchors=inputs.anchors,
            mixed_precision=context.worker_settings.mixed_precision,
        )
    except UpdateCancelled:
        return _finish_cancelled(context, job, "cancelled during training")
    except UpdateError as error:
        raise JobFailure(error.code, error.message) from error
    except RuntimeError as error:
        if "out of memory" in str(error).lower():
            raise JobFailure("out_of_memory", str(error)[:1000]) from error
        raise
    phases.done("train")

    with session_scope(context.session_factory) as session:
        start_evaluating(session, _held_job(context, session, job))
    after = measure(encoder, plan)
    _record_metrics_event(context, job, "after update", after.__dict__)
    answers = None
    if inputs.generator is not None and answers_before is not None:
        # The VLM shares the encoder's vision tower: it answers with the updated weights.
        answers = (answers_before, measure_answers(inputs.generator, plan))
        _record_metrics_event(context, job, "answers after update", answers[1].__dict__)
    evaluation, set_accuracies = evaluation_records(plan, before, after, answers)
    phases.done("evaluate_after")

    child_state = encoder.image_encoder_state()
    with session_scope(context.session_factory) as session:
        parent = versions_repository.get(session, job.parent_version_id or "")
        assert parent is not None  # the job's parent was loaded from this row
        stored = store_version_state(
            session,
            context.blobs,
            parent,
            inputs.parent_state,
            child_state,
            context.settings.checkpoint_every,
        )
    records = VersionRecords(
        evaluation=evaluation,
        set_accuracies=set_accuracies,
        cost=cost_record(outcome.report, phases.seconds),
        carried_states=store_carried_states(
            context.blobs, inputs.carried_state_blobs, job.method, outcome.carried_state
        ),
    )
    result = _commit_version(context, job, stored, records)
    phases.done("store")
    if result.version_id is not None:
        context.weights.remember(job.model_id, result.version_id, child_state)
    return result


@dataclass
class JobInputs:
    """Everything a claimed job trains and evaluates with."""

    encoder: DualEncoder
    # Generative models: the VLM sharing ``encoder``'s vision tower (None for dual encoders).
    generator: VisionLanguageModel | None
    parent_state: dict[str, torch.Tensor]
    trained: list[ImageExample]
    negatives: list[str]
    plan: EvaluationPlan
    # Per method, state a method carries from version to version (KeepLoRA's subspace),
    # and the blob each was stored in; inherited through versions made by other methods.
    carried_states: dict[str, dict[str, torch.Tensor]]
    carried_state_blobs: dict[str, str]
    # The anchor halves of the control sets (CC is measured on the other halves), plus the
    # earlier corrections' examples when the job replays them.
    anchors: list[ImageExample]


def _load(context: WorkerContext, session: Session, job: ClaimedJob) -> JobInputs:
    model = registry_repository.get(session, job.model_id)
    if model is None:
        raise JobFailure("model_not_found", f"model {job.model_id} no longer exists")
    if job.parent_version_id is None:
        raise JobFailure("no_active_version", f"model {model.name} has no active version")
    parent = versions_repository.get(session, job.parent_version_id)
    assert parent is not None  # the active pointer's foreign key
    try:
        encoder, parent_state = context.weights.encoder_at(session, context.blobs, model, parent)
        generator = context.weights.checkpoint(model).generator
        correction = load_correction(session, context.blobs, job.correction_id)
        eval_sets = load_eval_sets(session, context.blobs, model.id)
        replayed = (
            replayed_examples(session, context.blobs, parent)
            if job.hyperparameters.anchor_replay
            else []
        )
    except (SnapshotIntegrityError, BlobNotFoundError, BlobCorruptedError) as error:
        raise JobFailure("stored_data_integrity", str(error)) from error
    trained, held_out = correction.trained, correction.held_out
    own_labels = {example.label for example in trained + held_out if example.label is not None}
    # The model's other known labels are negatives: a one-class correction still has
    # something to be contrasted against, and the target accuracy asks "which known class".
    known = {e.label for s in eval_sets for e in s.examples() if e.label is not None}
    negatives = sorted(known - own_labels)
    measured_sets, anchors = split_control_sets(eval_sets)
    anchors += replayed
    plan = build_plan(trained, held_out, negatives, measured_sets, job.hyperparameters.template)
    carried_state_blobs = {state.method: state.blob_sha256 for state in parent.carried_states}
    try:
        carried_states = {
            method: deserialize_state(context.blobs.get(sha256))
            for method, sha256 in carried_state_blobs.items()
        }
    except (SnapshotIntegrityError, BlobNotFoundError, BlobCorruptedError) as error:
        raise JobFailure("stored_data_integrity", str(error)) from error
    return JobInputs(
        encoder,
        generator,
        parent_state,
        trained,
        negatives,
        plan,
        carried_states,
        carried_state_blobs,
        anchors,
    )


def cost_record(report: UpdateReport, phase_seconds: dict[str, float]) -> VersionCost:
    """What the update cost, as the version's record."""
    return VersionCost(
        device=report.device,
        examples=report.examples,
        steps=report.steps,
        trainable_parameters=report.trainable_parameters,
        optimizer_state_bytes=report.optimizer_state_bytes,
        peak_memory_bytes=report.peak_memory_bytes,
        added_memory_bytes=report.added_memory_bytes,
        train_seconds=report.train_seconds,
        total_seconds=report.total_seconds,
        losses=report.losses,
        stop_reason=report.stop_reason,
        anchors=report.anchors,
        anchor_drift=report.anchor_drift,
        phase_seconds=dict(phase_seconds),
        method_details=report.details,
    )


def store_carried_states(
    blobs: BlobStore,
    inherited: dict[str, str],
    method: str,
    produced: dict[str, torch.Tensor] | None,
) -> dict[str, str]:
    """The new version's carried-state blobs: the parent's, with ``method``'s replaced when
    the update produced one (safetensors, hash-checked on load like every snapshot)."""
    if produced is None:
        return dict(inherited)
    sha256 = blobs.put(serialize_state(produced, {"kind": "carried-state", "method": method}))
    return {**inherited, method: sha256}


def _held_job(context: WorkerContext, session: Session, job: ClaimedJob) -> Job:
    """The job row, after renewing our lease (raises LeaseLost when another worker has it)."""
    job_row = held_job(session, job.lease, context.worker_settings.lease_seconds)
    if job_row is None:
        raise LeaseLost(f"job {job.id}: lease lost")
    return job_row


def anchor_note(anchors: list[ImageExample]) -> str:
    """What the job's anchor terms hold on to, in a sentence (a warning without anchors)."""
    if not anchors:
        return (
            "no anchors: the model has no control eval sets (and nothing replayed), so the "
            "anchor terms are inactive and the update is unconstrained; register a control set"
        )
    return f"anchor terms on {len(anchors)} images (control-set anchor halves, replayed examples)"


def _record_metrics_event(
    context: WorkerContext, job: ClaimedJob, message: str, data: dict[str, Any]
) -> None:
    with session_scope(context.session_factory) as session:
        append_event(session, job.id, JobEventType.METRICS, message, data)


def _commit_version(
    context: WorkerContext,
    job: ClaimedJob,
    stored: StoredState,
    records: VersionRecords,
) -> JobResult:
    with session_scope(context.session_factory) as session:
        job_row = _held_job(context, session, job)
        if job_row.cancel_requested:
            finish_job(
                session, job_row, JobStatus.CANCELLED, error_message="cancelled during evaluation"
            )
            return JobResult(Outcome.CANCELLED)
        model = registry_repository.get(session, job.model_id)
        assert model is not None and job.parent_version_id is not None
        version = create_version(
            session,
            model_id=job.model_id,
            parent_id=job.parent_version_id,
            job_id=job.id,
            method=job.method,
            data_hash=_data_hash(session, job.correction_id),
            content_sha256=stored.content_sha256,
            snapshot_sha256=stored.snapshot_sha256,
            checkpoint_sha256=stored.checkpoint_sha256,
            records=records,
        )
        deployment = apply_activation_gate(session, model, version)
        finish_job(session, job_row, JobStatus.SUCCEEDED, result_version_id=version.id)
        return JobResult(Outcome.SUCCEEDED, version_id=version.id, activated=deployment is not None)


def _data_hash(session: Session, correction_id: str) -> str | None:
    correction = corrections_repository.get(session, correction_id)
    return correction.data_hash if correction is not None else None


def _finish_cancelled(context: WorkerContext, job: ClaimedJob, message: str) -> JobResult:
    with session_scope(context.session_factory) as session:
        job_row = _held_job(context, session, job)
        finish_job(session, job_row, JobStatus.CANCELLED, error_message=message)
    return JobResult(Outcome.CANCELLED)


def _finish_failed(context: WorkerContext, job: ClaimedJob, code: str, message: str) -> JobResult:
    logger.error("job failed", extra={"error_code": code, "error_message": message})
    with session_scope(context.session_factory) as session:
        job_row = _held_job(context, session, job)
        finish_job(session, job_row, JobStatus.FAILED, error_code=code, error_message=message)
    return JobResult(Outcome.FAILED, error_code=code)
