"""Accepting a correction batch: validate, store images, create the job, queue it (outbox).

A submission runs these steps in order (:func:`submit_correction`): resolve the method's
hyperparameters, validate the examples, split them into what trains and what measures TI,
store the images, then record the correction with its examples and the job with its first
event and outbox message (``service.jobs.service.create_job``) in one savepoint of the
caller's transaction. The broker hears of the job only after that commits, so a rolled-back
request leaves no ghost job and a broker outage loses nothing. Images are written to the
content-addressed store first; an aborted request can leave an unreferenced blob, which is
harmless (same bytes, same address).

An Idempotency-Key is looked at once, where the database keeps it unique per model: the
insert of the job. When the key is taken, the savepoint is rolled back and the request
answers as the key's job did (or 409 for a different body), so concurrent retries create
one job.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from catalogue.architecture import ArchitectureError
from catalogue.declarations import resolve_hyperparameters
from catalogue.hyperparameters import HyperparameterError
from catalogue.objectives import TrainingObjective
from service.corrections import repository
from service.corrections.answer_fit import check_answers_fit
from service.corrections.schemas import (
    CorrectionAccepted,
    CorrectionInput,
    CorrectionOptions,
    SubmittedExample,
)
from service.db.tables import Correction, CorrectionExample, Job, Model
from service.db.values import EvalSetKind, JobStatus, TISource
from service.errors import Conflict, InvalidInput
from service.images import ImageLimits, decode_image
from service.jobs import repository as jobs_repository
from service.jobs.service import create_job
from service.registry import repository as registry_repository
from service.registry.service import get_model, model_architecture
from service.settings import Settings
from service.storage.blobs import BlobStore, sha256_hex
from service.validation import MAX_TEXT_LENGTH, check_batch_size, clean_text


@dataclass(frozen=True)
class Submission:
    """The outcome of a submission; ``replayed`` when an Idempotency-Key matched."""

    accepted: CorrectionAccepted
    replayed: bool


def _canonical_hash(value: Any) -> str:
    return hashlib.sha256(
        json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()


def _example_key(example: SubmittedExample) -> list[Any]:
    return [sha256_hex(example.image), example.label, example.question, example.answer]


def request_hash(request: CorrectionInput) -> str:
    """Identity of a request body for Idempotency-Key checks (form-independent)."""
    return _canonical_hash(
        {
            "options": request.options.model_dump(mode="json"),
            "examples": [_example_key(example) for example in request.examples],
            "eval_examples": [_example_key(example) for example in request.eval_examples],
        }
    )


def choose_held_out(groups: list[str], fraction: float, seed: int) -> set[int]:
    """Indices to hold out: per group (label or answer), ``round(fraction * n)`` of its ``n``
    examples, at least one when ``fraction > 0``, and never all of them (groups of one stay in
    training). Deterministic for a given seed.
    """
    if fraction <= 0:
        return set()
    by_group: dict[str, list[int]] = defaultdict(list)
    for index, group in enumerate(groups):
        by_group[group].append(index)
    rng = random.Random(seed)
    held_out: set[int] = set()
    for group in sorted(by_group):
        members = by_group[group]
        if len(members) < 2:
            continue
        count = min(len(members) - 1, max(1, round(fraction * len(members))))
        held_out.update(rng.sample(members, count))
    return held_out


def _clean_example(example: SubmittedExample, field: str, max_length: int) -> SubmittedExample:
    has_label = example.label is not None
    has_qa = example.question is not None or example.answer is not None
    if has_label == has_qa:
        raise InvalidInput(
            "example_needs_label_or_qa",
            f"{field}: give either a label, or a question and its answer",
        )
    if has_label:
        return SubmittedExample(
            image=example.image,
            label=clean_text(example.label, f"{field}.label", "empty_label", max_length),
        )
    return SubmittedExample(
        image=example.image,
        question=clean_text(
            example.question, f"{field}.question", "empty_question", MAX_TEXT_LENGTH, True
        ),
        answer=clean_text(example.answer, f"{field}.answer", "empty_answer", max_length),
    )


def _validated_examples(
    examples: list[SubmittedExample], prefix: str, settings: Settings
) -> list[SubmittedExample]:
    limits = ImageLimits(settings.max_upload_bytes, settings.max_image_pixels)
    cleaned = []
    for index, example in enumerate(examples):
        field = f"{prefix}[{index}]"
        cleaned.append(_clean_example(example, field, settings.max_label_length))
        decode_image(example.image, limits, f"{field}.image")
    return cleaned


def check_contrast(
    trained: list[SubmittedExample], batch_labels: set[str], known_labels: set[str]
) -> None:
    """The contrastive loss needs two distinct captions: two labels (or question/answer pairs)
    among the trained examples, or the model's other known labels as negatives (what the
    worker will use: known labels minus every label of the batch). Checked here so a batch
    that cannot train is a 422, not a failed job."""
    captions = {
        (example.label,) if example.label is not None else (example.question, example.answer)
        for example in trained
    }
    if len(captions) + len(known_labels - batch_labels) < 2:
        raise InvalidInput(
            "single_class",
            "the trained examples have a single class and the model knows no other labels to "
            "contrast it with: add examples of another label, or register an eval set first",
        )


def submit_correction(
    session: Session,
    blobs: BlobStore,
    settings: Settings,
    model_id: str,
    request: CorrectionInput,
    idempotency_key: str | None = None,
) -> Submission:
    """Validate and record a correction batch and its queued job (see the module docstring).

    Errors (all before any row is written): 404 ``model_not_found``; 422 ``no_examples``,
    ``too_many_examples``, ``empty_label``, ``example_needs_label_or_qa``, ``single_class``,
    the image codes of ``service/images.py``, ``unknown_method`` / ``invalid_hyperparameter``
    / ``answer_objective_needs_vlm``, ``answer_too_long``;
    409 ``model_unreadable``, and ``idempotency_key_reused`` for a known key with a different
    body. A known key with the same body answers the job it created (``replayed``), before
    anything is validated again: a retry gets the first answer, whatever changed since.
    """
    model = get_model(session, model_id)
    body_hash = request_hash(request)
    known = _job_of_key(session, model.id, idempotency_key)
    if known is not None:
        return _replay(session, known, body_hash)
    hyperparameters = _resolved_hyperparameters(model, request.options)
    target_sets = named_target_sets(session, model.id, request.options.target_sets)
    examples, eval_examples = _validated_batch(request, settings)
    objective = TrainingObjective(hyperparameters["objective"])
    if objective.trains_answers:
        check_answers_fit(model.base_path, examples, hyperparameters["answer_template"])
    split = _split_examples(
        session,
        settings,
        model.id,
        examples,
        eval_examples,
        request.options,
        contrastive=objective.trains_clip,
    )
    rows = _store_examples(blobs, split)
    job = Job(
        model_id=model.id,
        method=request.options.method,
        hyperparameters=hyperparameters,
        seed=request.options.seed,
        idempotency_key=idempotency_key,
        request_hash=body_hash,
    )
    try:
        correction = _record_correction(session, model.id, rows, split.ti_source, target_sets, job)
    except IntegrityError:
        # A concurrent request with the same key won the race: the unique constraint on
        # (model, Idempotency-Key) decides, so answer as its job did.
        existing = _job_of_key(session, model.id, idempotency_key)
        if existing is None:
            raise
        return _replay(session, existing, body_hash)
    return Submission(accepted=_accepted(correction, job), replayed=False)


def named_target_sets(session: Session, model_id: str, names: list[str]) -> list[str]:
    """The target sets a correction names, each once, in order: each must be an eval set of
    the model (422 ``unknown_target_set``) of kind target (422 ``not_a_target_set``)."""
    named = list(dict.fromkeys(names))
    for name in named:
        eval_set = registry_repository.get_eval_set_by_name(session, model_id, name)
        if eval_set is None:
            raise InvalidInput(
                "unknown_target_set", f"target_sets: the model has no eval set {name!r}"
            )
        if eval_set.kind != EvalSetKind.TARGET:
            raise InvalidInput(
                "not_a_target_set",
                f"target_sets: {name!r} is a {eval_set.kind.value} set; name target sets",
            )
    return named


def _resolved_hyperparameters(model: Model, options: CorrectionOptions) -> dict[str, Any]:
    """The method's full hyperparameters for the model: the request's over the defaults (422
    ``unknown_method`` / ``invalid_hyperparameter``; 409 ``model_unreadable`` when the model's
    checkpoint config can no longer be read)."""
    try:
        return resolve_hyperparameters(
            options.method, options.hyperparameters, model_architecture(model)
        ).model_dump()
    except HyperparameterError as error:
        raise InvalidInput(error.code, error.message) from error
    except ArchitectureError as error:
        raise Conflict(
            "model_unreadable", "the model's checkpoint can no longer be read"
        ) from error


def _validated_batch(
    request: CorrectionInput, settings: Settings
) -> tuple[list[SubmittedExample], list[SubmittedExample]]:
    """The request's examples and eval examples, texts cleaned and images checked to decode
    within the limits (422 ``no_examples``, ``too_many_examples``, the text and image codes)."""
    if not request.examples:
        raise InvalidInput("no_examples", "a correction needs at least one example")
    check_batch_size(
        len(request.examples) + len(request.eval_examples), settings.max_examples_per_batch
    )
    return (
        _validated_examples(request.examples, "examples", settings),
        _validated_examples(request.eval_examples, "eval_examples", settings),
    )


@dataclass(frozen=True)
class ExampleSplit:
    """Every example of a correction in stored order (examples, then eval examples), which of
    them stay out of training, and what measures TI."""

    examples: list[SubmittedExample]
    held_out: set[int]
    ti_source: TISource


def _split_examples(
    session: Session,
    settings: Settings,
    model_id: str,
    examples: list[SubmittedExample],
    eval_examples: list[SubmittedExample],
    options: CorrectionOptions,
    contrastive: bool = True,
) -> ExampleSplit:
    """Decide what trains and what measures TI, and check that what trains can (422
    ``single_class``, when it trains a contrastive loss). Eval examples never train; of the
    examples, a share per label is held out only when nothing else can measure TI, unless the
    request sets the share."""
    has_target_sets = bool(
        registry_repository.list_eval_sets(session, model_id, EvalSetKind.TARGET)
    )
    fraction = options.held_out_fraction
    if fraction is None:
        fraction = 0.0 if eval_examples or has_target_sets else settings.default_held_out_fraction
    held_out = choose_held_out(
        [example.label or example.answer or "" for example in examples], fraction, options.seed
    )
    if contrastive:
        check_contrast(
            [example for position, example in enumerate(examples) if position not in held_out],
            {example.label for example in examples + eval_examples if example.label is not None},
            registry_repository.known_labels(session, model_id),
        )
    return ExampleSplit(
        examples=examples + eval_examples,
        held_out=held_out | set(range(len(examples), len(examples) + len(eval_examples))),
        ti_source=ti_source_of(
            bool(eval_examples), bool(held_out), has_target_sets, named=bool(options.target_sets)
        ),
    )


def _store_examples(blobs: BlobStore, split: ExampleSplit) -> list[CorrectionExample]:
    """Write each image to the content-addressed store; the example rows that reference them
    (not yet added to a session)."""
    return [
        CorrectionExample(
            position=position,
            image_sha256=blobs.put(example.image),
            label=example.label,
            question=example.question,
            answer=example.answer,
            held_out=position in split.held_out,
        )
        for position, example in enumerate(split.examples)
    ]


def _record_correction(
    session: Session,
    model_id: str,
    rows: list[CorrectionExample],
    ti_source: TISource,
    target_sets: list[str],
    job: Job,
) -> Correction:
    """Add the correction, its examples and ``job`` (with its first event and outbox message)
    in one savepoint of the caller's transaction. ``IntegrityError`` when ``job``'s
    Idempotency-Key is already taken for the model, with nothing of the attempt left."""
    data_hash = _canonical_hash(
        [[row.image_sha256, row.label, row.question, row.answer, row.held_out] for row in rows]
    )
    with session.begin_nested():
        correction = repository.add(
            session,
            Correction(
                model_id=model_id,
                data_hash=data_hash,
                num_examples=len(rows),
                num_held_out=sum(row.held_out for row in rows),
                ti_source=ti_source,
                target_sets=target_sets,
            ),
            rows,
        )
        job.correction_id = correction.id
        create_job(session, job)
    return correction


def _job_of_key(session: Session, model_id: str, idempotency_key: str | None) -> Job | None:
    """The job an earlier request with this Idempotency-Key created, if any."""
    if idempotency_key is None:
        return None
    return jobs_repository.get_by_idempotency_key(session, model_id, idempotency_key)


def _replay(session: Session, job: Job, body_hash: str) -> Submission:
    """The answer ``job`` gave, for a request with its Idempotency-Key: the same response
    when the body is the same (``replayed``), 409 ``idempotency_key_reused`` otherwise."""
    if job.request_hash != body_hash:
        raise Conflict(
            "idempotency_key_reused",
            "this Idempotency-Key was used with a different request body",
        )
    correction = repository.get(session, job.correction_id)
    assert correction is not None  # foreign key
    return Submission(accepted=_accepted(correction, job), replayed=True)


def _accepted(correction: Correction, job: Job) -> CorrectionAccepted:
    # Built from stored rows only, so a replay returns exactly the first response.
    return CorrectionAccepted(
        correction_id=correction.id,
        job_id=job.id,
        model_id=job.model_id,
        status=JobStatus.QUEUED,
        method=job.method,
        hyperparameters=job.hyperparameters,
        seed=job.seed,
        examples=correction.num_examples,
        trained=correction.num_examples - correction.num_held_out,
        held_out=correction.num_held_out,
        ti_source=correction.ti_source,
        target_sets=list(correction.target_sets),
        note=ti_note(correction),
        data_hash=correction.data_hash,
    )


def ti_source_of(
    has_eval_examples: bool, holds_out: bool, has_target_sets: bool, named: bool = False
) -> TISource:
    """What a correction's TI is measured on: the target sets it names, else its eval
    examples, else its held-out examples, else the model's target sets."""
    if named:
        return TISource.TARGET_SETS
    if has_eval_examples:
        return TISource.EVAL_EXAMPLES
    if holds_out:
        return TISource.HELD_OUT
    return TISource.TARGET_SETS if has_target_sets else TISource.NONE


def ti_note(correction: Correction) -> str:
    """One sentence for people: what trains and what measures TI."""
    trained = correction.num_examples - correction.num_held_out
    if correction.ti_source == TISource.EVAL_EXAMPLES:
        return (
            f"all {trained} examples train; TI is measured on the "
            f"{correction.num_held_out} eval_examples sent with them"
        )
    if correction.ti_source == TISource.HELD_OUT:
        return (
            f"{correction.num_held_out} of the {correction.num_examples} examples (one or more "
            f"per label with at least two) are held out of training to measure TI, so "
            f"{trained} train; send eval_examples, or register a target eval set for the "
            f"model, to train on all of them"
        )
    if correction.ti_source == TISource.TARGET_SETS and correction.target_sets:
        return (
            f"all {trained} examples train; TI is measured on the target eval sets it names "
            f"({', '.join(correction.target_sets)}): their images of the corrected labels, or "
            f"all of them if they hold none"
        )
    if correction.ti_source == TISource.TARGET_SETS:
        return (
            f"all {trained} examples train; TI is measured on the model's target eval sets "
            f"(their images of the corrected labels, or all of them if they hold none)"
        )
    return (
        f"all {trained} examples train; nothing measures TI (no eval_examples, no target "
        f"eval sets), so the auto gate will hold the version for review"
    )
