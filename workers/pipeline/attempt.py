"""One attempt at a claimed job, phase by phase (``workers/pipeline/phases.py``; each is
recorded on the job as it starts, so its progress says what it is doing):

1. load: the parent's weights, the correction's examples, the model's evaluation sets;
2. evaluate before: accuracies (and, for a VLM, answers) with the parent's weights;
3. train: the job's method merges its update into the encoder (progress renews the lease;
   a cancel request stops it);
4. evaluate after: the same measurements with the new weights; TI / CC;
5. store: the exact delta (or checkpoint) blob and the states methods carry forward,
   content-addressed, written before any row refers to them;
6. gate: in ONE transaction, re-check the lease and the cancel flag, create the ready
   version, apply the activation gate, mark the job succeeded.

So a version exists only if its job succeeded, and the active pointer only ever moves to a
ready version. The runner (``workers/pipeline/runner.py``) claims the job and holds its lease.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from service.corrections import repository as corrections_repository
from service.db.session import session_scope
from service.db.tables import VersionCost
from service.db.values import JobEventType, JobStatus
from service.jobs.lifecycle import append_event, finish_job, start_evaluating
from service.modelling.examples import ImageExample
from service.modelling.snapshots import serialize_state
from service.registry import repository as registry_repository
from service.storage.blobs import BlobStore
from service.versions import repository as versions_repository
from service.versions.service import VersionRecords, apply_activation_gate, create_version
from service.versions.state_chain import StoredState, store_version_state
from workers.engine.errors import UpdateCancelled
from workers.engine.update import UpdateOutcome, UpdateReport, run_update
from workers.pipeline.claimed import ClaimedJob, JobResult, Outcome, finish_cancelled
from workers.pipeline.context import WorkerContext
from workers.pipeline.evaluation import Accuracies, evaluation_records, measure, measure_answers
from workers.pipeline.job_inputs import JobInputs, read_job_inputs
from workers.pipeline.phases import Phase, PhaseClock
from workers.pipeline.progress import JobProgress, PhaseAnnouncer


@dataclass(frozen=True)
class Measurements:
    """What one evaluation pass found: accuracies, and a VLM's answers (None otherwise)."""

    accuracies: Accuracies
    answers: Accuracies | None


def run_attempt(context: WorkerContext, job: ClaimedJob) -> JobResult:
    """The phases of the module docstring, in order. Raises ``AttemptFailed`` (recorded on
    the job by the runner) or ``LeaseLost`` (another worker has the job now)."""
    clock = PhaseClock(on_enter=PhaseAnnouncer(context.session_factory, job.lease))
    with clock.phase(Phase.LOAD), context.session_factory() as session:
        inputs = read_job_inputs(context, session, job)
    with clock.phase(Phase.EVALUATE_BEFORE):
        if inputs.left_out_of_evaluation:
            _record_event(
                context,
                job,
                JobEventType.LOG,
                f"{inputs.left_out_of_evaluation} evaluation images are also training examples:"
                " left out of TI and CC",
                {"left_out_of_evaluation": inputs.left_out_of_evaluation},
            )
        before = evaluate(context, job, inputs, "before update")
        if job.hyperparameters.uses_anchors():
            _record_event(
                context, job, JobEventType.LOG, anchor_note(inputs.anchors, inputs.replayed)
            )
    try:
        with clock.phase(Phase.TRAIN):
            update = train(context, job, inputs)
    except UpdateCancelled:
        return finish_cancelled(context, job, "cancelled during training")
    with clock.phase(Phase.EVALUATE_AFTER):
        with session_scope(context.session_factory) as session:
            start_evaluating(session, job.held_row(context, session))
        after = evaluate(context, job, inputs, "after update")
        answers = None
        if before.answers is not None and after.answers is not None:
            answers = (before.answers, after.answers)
        evaluation, set_accuracies = evaluation_records(
            inputs.plan, before.accuracies, after.accuracies, answers
        )
    cost = cost_record(update.report, clock.seconds)
    child_state = inputs.encoder.image_encoder_state()
    with clock.phase(Phase.STORE):
        stored = store_state(context, job, inputs, child_state)
        records = VersionRecords(
            evaluation=evaluation,
            set_accuracies=set_accuracies,
            cost=cost,
            carried_states=store_carried_states(
                context.blobs, inputs.carried_state_blobs, job.method, update.carried_state
            ),
        )
    with clock.phase(Phase.GATE):
        result = commit_version(context, job, stored, records)
    if result.version_id is not None:
        context.weights.remember(job.model_id, result.version_id, child_state)
    return result


def evaluate(context: WorkerContext, job: ClaimedJob, inputs: JobInputs, when: str) -> Measurements:
    """Accuracies on the plan (and a VLM's answers: it shares the encoder's vision tower, so it
    answers with the weights of the moment), each recorded as a metrics event."""
    accuracies = measure(inputs.encoder, inputs.plan)
    _record_event(context, job, JobEventType.METRICS, when, accuracies.__dict__)
    answers = None
    if inputs.generator is not None:
        answers = measure_answers(inputs.generator, inputs.plan)
        _record_event(context, job, JobEventType.METRICS, f"answers {when}", answers.__dict__)
    return Measurements(accuracies, answers)


def train(context: WorkerContext, job: ClaimedJob, inputs: JobInputs) -> UpdateOutcome:
    """The job's method on its examples, merged into ``inputs.encoder`` (in place)."""
    progress = JobProgress(
        context.session_factory,
        job.lease,
        context.worker_settings.progress_interval_s,
        context.worker_settings.cancel_poll_s,
    )
    return run_update(
        inputs.encoder,
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
        replayed=inputs.replayed,
        mixed_precision=context.worker_settings.mixed_precision,
        vlm=inputs.generator,
        known_answers=inputs.known_answers,
        base_state=inputs.base_state,
    )


def store_state(
    context: WorkerContext,
    job: ClaimedJob,
    inputs: JobInputs,
    child_state: dict[str, torch.Tensor],
) -> StoredState:
    """The new weights as a delta on the parent (or a full checkpoint), stored by hash."""
    with session_scope(context.session_factory) as session:
        parent = versions_repository.get(session, job.parent_version_id or "")
        assert parent is not None  # the job's parent was loaded from this row
        return store_version_state(
            session,
            context.blobs,
            parent,
            inputs.parent_state,
            child_state,
            context.settings.checkpoint_every,
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


def commit_version(
    context: WorkerContext, job: ClaimedJob, stored: StoredState, records: VersionRecords
) -> JobResult:
    """The version, the gate's decision and the job's success, in one transaction (or the
    job cancelled, when a cancel arrived during evaluation)."""
    with session_scope(context.session_factory) as session:
        job_row = job.held_row(context, session)
        if job_row.cancel_requested:
            finish_job(
                session, job_row, JobStatus.CANCELLED, error_message="cancelled during evaluation"
            )
            return JobResult(Outcome.CANCELLED)
        model = registry_repository.get(session, job.model_id)
        assert model is not None and job.parent_version_id is not None
        correction = corrections_repository.get(session, job.correction_id)
        version = create_version(
            session,
            model_id=job.model_id,
            parent_id=job.parent_version_id,
            job_id=job.id,
            method=job.method,
            data_hash=correction.data_hash if correction is not None else None,
            content_sha256=stored.content_sha256,
            snapshot_sha256=stored.snapshot_sha256,
            checkpoint_sha256=stored.checkpoint_sha256,
            records=records,
        )
        deployment = apply_activation_gate(session, model, version)
        finish_job(session, job_row, JobStatus.SUCCEEDED, result_version_id=version.id)
        return JobResult(Outcome.SUCCEEDED, version_id=version.id, activated=deployment is not None)


def anchor_note(anchors: list[ImageExample], replayed: list[ImageExample]) -> str:
    """What the job's anchor terms hold on to, in a sentence (a warning without anchors)."""
    if not anchors and not replayed:
        return (
            "no anchors: the model has no control eval sets (and nothing replayed), so the "
            "anchor terms are inactive and the update is unconstrained; register a control set"
        )
    return (
        f"anchor terms on {len(anchors) + len(replayed)} images ({len(anchors)} from the "
        f"control sets' anchor halves, {len(replayed)} replayed from earlier corrections)"
    )


def _record_event(
    context: WorkerContext,
    job: ClaimedJob,
    kind: JobEventType,
    message: str,
    data: dict[str, Any] | None = None,
) -> None:
    with session_scope(context.session_factory) as session:
        append_event(session, job.id, kind, message, data)
