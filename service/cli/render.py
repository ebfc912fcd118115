"""What the client commands print: rich tables and one-line summaries, or the API's JSON.

Nothing in a table is cut to fit the terminal: ids, timestamps and numbers are never broken
(they can be copied and searched), free text (a reason, a name) wraps between words, and a
table that cannot fit the terminal that way is printed wider than it (the terminal wraps the
lines; no text is lost).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import typer
from pydantic import BaseModel
from rich.console import Console, ConsoleOptions
from rich.measure import Measurement
from rich.table import Column, Table

from service.auth.schemas import ApiKeyCreated, ApiKeyOut
from service.corrections.schemas import CorrectionAccepted
from service.jobs.schemas import JobOut
from service.registration.schemas import EvalSetOut, ModelDeleted, ModelOut
from service.retention.schemas import GarbageCollectionOut, StorageUsageOut
from service.serving.schemas import ClassifyOut
from service.versions.schemas import DeploymentOut, VersionOut

# Wider than any table these commands print: measures a table free of the terminal's width.
_UNBOUNDED_WIDTH = 100_000


def print_json(value: BaseModel | Sequence[BaseModel] | dict[str, Any] | None) -> None:
    """The records as the API sent them (JSON, indented)."""
    typer.echo(json.dumps(_jsonable(value), indent=2))


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return value


def print_table(table: Table) -> None:
    """Print ``table`` within the terminal's width, or as wide as it must be to cut nothing."""
    console = Console()
    options = console.options.update_width(_UNBOUNDED_WIDTH)
    natural = Measurement.get(console, options, table).maximum
    # Its width with every cell on one line, less what wrapping free text between words saves.
    saved = sum(
        _wrapping_saves(console, options, column) for column in table.columns if not column.no_wrap
    )
    Console(width=max(natural - saved, console.width)).print(table)


def _wrapping_saves(console: Console, options: ConsoleOptions, column: Column) -> int:
    measures = [Measurement.get(console, options, cell) for cell in (column.header, *column.cells)]
    return max(m.maximum for m in measures) - max(m.minimum for m in measures)


def _table(title: str, columns: Sequence[str], wrapping: Collection[str] = ()) -> Table:
    """A table whose columns never break their cells, except ``wrapping`` (free text), which
    wrap between words."""
    table = Table(title=title)
    for column in columns:
        table.add_column(column, no_wrap=column not in wrapping, overflow="fold")
    return table


def _when(moment: datetime | None) -> str:
    return "" if moment is None else f"{moment:%Y-%m-%d %H:%M:%S}"


def _points(value: float | None) -> str:
    """Accuracy points, signed (TI / CC); empty when nothing measured them."""
    return "" if value is None else f"{value:+.2f}"


def version_numbers(versions: Sequence[VersionOut]) -> dict[str, int]:
    """Version id -> version number, from the model's version list."""
    return {version.id: version.number for version in versions}


def _number_of(numbers: dict[str, int], version_id: str | None) -> str:
    return "" if version_id is None else str(numbers.get(version_id, version_id))


# -- tables -------------------------------------------------------------------------------
def versions_table(model: ModelOut, versions: Sequence[VersionOut]) -> Table:
    """The model's versions with TI / CC and the gate's decision (for a generative model,
    also TI / CC of its generated answers, which its gate judges)."""
    answers = ("answer TI", "answer CC") if model.generative else ()
    columns = ("#", "id", "status", "method", "TI", "CC", *answers, "gate", "parent", "created")
    table = _table(f"{model.name} ({model.id})", (*columns, "active"))
    numbers = version_numbers(versions)
    for version in versions:
        evaluation = version.evaluation
        figures = (
            (evaluation.ti, evaluation.cc, evaluation.answer_ti, evaluation.answer_cc)
            if evaluation is not None
            else (None, None, None, None)
        )
        gate = version.gate
        table.add_row(
            str(version.number),
            version.id,
            version.status,
            version.method,
            *(_points(value) for value in figures[: 2 + len(answers)]),
            "" if gate is None else ("activated" if gate.activated else "held"),
            _number_of(numbers, version.parent_id),
            _when(version.created_at),
            "*" if version.active else "",
        )
    return table


def deployments_table(
    model: ModelOut, deployments: Sequence[DeploymentOut], numbers: dict[str, int], title: str
) -> Table:
    """Moves of the model's active pointer: when, what, from and to which version, who, why."""
    columns = ("when", "action", "from", "to", "actor", "reason")
    table = _table(f"{title} of {model.name}", columns, wrapping={"actor", "reason"})
    for deployment in deployments:
        table.add_row(
            _when(deployment.created_at),
            deployment.action,
            _number_of(numbers, deployment.from_version_id),
            _number_of(numbers, deployment.to_version_id),
            deployment.actor,
            deployment.reason,
        )
    return table


def jobs_table(model: ModelOut, jobs: Sequence[JobOut], numbers: dict[str, int]) -> Table:
    columns = ("id", "status", "method", "progress", "phase", "version", "error", "created")
    table = _table(f"jobs of {model.name}", columns)
    for job in jobs:
        table.add_row(
            job.id,
            job.status,
            job.method,
            f"{job.progress.step}/{job.progress.total}",
            job.progress.phase,
            _number_of(numbers, job.result_version_id),
            "" if job.error is None else job.error.code,
            _when(job.created_at),
        )
    return table


def job_table(job: JobOut) -> Table:
    """One job, a field per row."""
    table = _table(f"job {job.id}", ("field", "value"), wrapping={"value"})
    split = job.training_split
    rows = {
        "model": job.model_id,
        "correction": job.correction_id,
        "status": job.status,
        "progress": f"{job.progress.step}/{job.progress.total}",
        "phase": f"{job.progress.phase}"
        + (
            ""
            if job.progress.phase_elapsed_s is None
            else f" for {job.progress.phase_elapsed_s:g}s"
        ),
        "elapsed": f"{job.progress.elapsed_s:g}s"
        + ("" if not job.progress.eta_s else f", about {job.progress.eta_s:g}s left"),
        "method": job.method,
        "hyperparameters": "\n".join(
            f"{name}={json.dumps(value)}" for name, value in sorted(job.hyperparameters.items())
        ),
        "seed": str(job.seed),
        "examples": f"{split.examples} ({split.trained} trained, {split.held_out} held out; "
        f"TI from {split.ti_source})",
        "parent version": job.parent_version_id or "",
        "result version": job.result_version_id or "",
        "error": "" if job.error is None else f"{job.error.code}: {job.error.message}",
        "attempts": str(job.attempts),
        "cancel requested": "yes" if job.cancel_requested else "no",
        "created": _when(job.created_at),
        "started": _when(job.started_at),
        "finished": _when(job.finished_at),
    }
    for field, value in rows.items():
        table.add_row(field, value)
    return table


def classify_table(model: ModelOut, images: Sequence[Path], answer: ClassifyOut) -> Table:
    table = _table(
        f"{model.name} version {answer.version_number}", ("image", "label", "probability")
    )
    for path, prediction in zip(images, answer.predictions, strict=True):
        probability = prediction.probabilities[prediction.label]
        table.add_row(str(path), prediction.label, f"{probability:.3f}")
    return table


def eval_sets_table(model: ModelOut, eval_sets: Sequence[EvalSetOut]) -> Table:
    columns = ("id", "name", "kind", "size", "questions", "max drop", "labels", "created")
    table = _table(f"eval sets of {model.name}", columns, wrapping={"name"})
    for eval_set in eval_sets:
        table.add_row(
            eval_set.id,
            eval_set.name,
            eval_set.kind,
            str(eval_set.size),
            str(eval_set.question_examples),
            "" if eval_set.max_drop is None else f"{eval_set.max_drop:g}",
            str(len(eval_set.labels)),
            _when(eval_set.created_at),
        )
    return table


def keys_table(keys: Sequence[ApiKeyOut]) -> Table:
    """Every key's scopes, models, expiry, last use and revocation (never the key)."""
    columns = ("id", "name", "prefix", "scopes", "models", "expires", "last used", "revoked")
    table = _table("API keys", columns, wrapping={"name"})
    for key in keys:
        table.add_row(
            key.id,
            key.name,
            key.prefix,
            ",".join(key.scopes),
            "all" if key.model_ids is None else ",".join(key.model_ids),
            _when(key.expires_at),
            _when(key.last_used_at),
            _when(key.revoked_at),
        )
    return table


# -- one-line summaries -------------------------------------------------------------------
def correction_summary(accepted: CorrectionAccepted) -> str:
    return (
        f"correction {accepted.correction_id}: {accepted.examples} examples, "
        f"job {accepted.job_id}\n  {accepted.note}"
    )


def version_summary(version: VersionOut) -> str:
    """A new version's outcome: status, whether active, TI / CC and the gate's reasons."""
    evaluation = version.evaluation
    ti, cc = (None, None) if evaluation is None else (evaluation.ti, evaluation.cc)
    lines = [
        f"version {version.number} ({version.status}, "
        f"{'active' if version.active else 'not active'}): "
        f"TI {_points(ti) or 'not measured'}, CC {_points(cc) or 'not measured'}"
    ]
    if version.gate is not None:
        lines.extend(f"  gate: {reason}" for reason in version.gate.reasons)
    return "\n".join(lines)


def storage_usage_summary(usage: StorageUsageOut) -> str:
    return f"{usage.blobs} blobs, {usage.bytes} bytes"


def garbage_collection_summary(report: GarbageCollectionOut) -> str:
    verb = "would delete" if report.dry_run else "deleted"
    return (
        f"scanned {report.scanned_blobs} blobs: {report.referenced_blobs} referenced, "
        f"{report.recent_blobs} within the {report.grace_s:g}s grace period; "
        f"{verb} {report.deleted_blobs} ({report.freed_bytes} bytes)"
    )


def model_deleted_summary(deleted: ModelDeleted) -> str:
    """What a model's deletion removed, and what became of its blobs."""
    blobs = deleted.blobs
    kept = []
    if blobs.referenced_blobs:
        kept.append(f"{blobs.referenced_blobs} kept (other rows name the same content)")
    if blobs.recent_blobs:
        kept.append(
            f"{blobs.recent_blobs} kept for now (stored within the {blobs.grace_s:g}s grace "
            "period: `vlmc storage gc` collects them later)"
        )
    return (
        f"model {deleted.name} deleted: {deleted.versions} versions, {deleted.deployments} "
        f"deployments, {deleted.jobs} jobs, {deleted.answers} answers, "
        f"{deleted.corrections} corrections, "
        f"{deleted.eval_sets} eval sets; blobs: {blobs.deleted_blobs} deleted "
        f"({blobs.freed_bytes} bytes)" + "".join(f", {part}" for part in kept)
    )


def created_key_summary(created: ApiKeyCreated) -> str:
    """The new key, on a line of its own (it is shown this once)."""
    return f"key {created.id} ({', '.join(created.scopes)}); store it now:\n{created.key}"


def revoked_key_summary(revoked: ApiKeyOut) -> str:
    return f"key {revoked.id} ({revoked.name}) revoked at {_when(revoked.revoked_at)}"
