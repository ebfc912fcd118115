"""The client commands of ``vlmc``, one per step of the README's walk-through: ``classify``,
``ask``, ``correct``, ``jobs``, ``versions``, ``activate``, ``rollback``, ``deployments``;
API keys (``keys create | list | revoke``), the storage lifecycle (``archive``,
``eval-sets list | delete``, ``storage usage | gc``), ``export`` and ``models delete`` with an
admin key. Wherever a command takes a version, it takes its number, its id or ``latest``.

Each reaches the service through ``ServiceClient`` at the global ``--url`` with the global
``--api-key``, prints a table or a one-line summary, or with ``--json`` the API's JSON. An
error answer of the API is printed as ``error (<status>) <code>: <message>`` on stderr and
exits with status 1 (``ReportingGroup``).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)
from typer.core import TyperGroup

from service.cli import render
from service.cli.client import ApiError, ServiceClient, VersionRef, version_reference
from service.db.values import JobEventType, JobStatus
from service.jobs.schemas import JobOut
from service.registration.schemas import ModelOut
from service.settings import DEFAULT_MODEL_NAME
from service.versions.schemas import DeploymentOut

app = typer.Typer()

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}

JsonOption = Annotated[
    bool, typer.Option("--json", help="print the API's JSON instead of a table or summary")
]
ModelOption = Annotated[
    str | None, typer.Option("--model", "-m", help="model name or id (default: the only one)")
]
VersionArgument = Annotated[str, typer.Argument(help="version number, id, or 'latest'")]
PinnedVersionOption = Annotated[
    str | None, typer.Option(help="answer with this version (number or id), not the active")
]
ReasonOption = Annotated[str, typer.Option(help="why (kept in the deployment history)")]


# -- where the service is, and its errors -------------------------------------------------
@dataclass(frozen=True)
class Connection:
    """Where the client commands find the service and as whom (the global options)."""

    url: str
    api_key: str | None

    def client(self) -> ServiceClient:
        if not self.api_key:
            raise typer.BadParameter("give --api-key or set VLMC_API_KEY")
        return ServiceClient.connect(self.url, self.api_key)


def _service(ctx: typer.Context) -> ServiceClient:
    """The client of this invocation: built from the global options, or the one a caller
    handed in as the context object (``CliRunner().invoke(app, args, obj=client)``)."""
    if isinstance(ctx.obj, ServiceClient):
        return ctx.obj
    if not isinstance(ctx.obj, Connection):
        raise TypeError(f"the context object is {type(ctx.obj).__name__}, not a Connection")
    service = ctx.obj.client()
    ctx.call_on_close(service.close)
    return service


class ReportingGroup(TyperGroup):
    """The root command group: an API error answer, or no answer at all, ends the command
    with a one-line message on stderr and exit status 1 (no traceback)."""

    # typer makes every context a typer.Context; its base class is typer's private click copy.
    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except ApiError as error:
            typer.secho(f"error ({error.status}) {error.code}: {error.message}", fg="red", err=True)
            raise typer.Exit(1) from None
        except httpx.TransportError as error:
            typer.secho(
                f"error: no answer from {error.request.url.copy_with(path='/', query=None)}: "
                f"{error}",
                fg="red",
                err=True,
            )
            raise typer.Exit(1) from None


# -- shared steps -------------------------------------------------------------------------
def resolve_model(service: ServiceClient, model: str | None) -> ModelOut:
    """The model named (by name or id); by default the only one, or else the embedded
    default's dual encoder (registered first, beside its VLM)."""
    models = service.list_models()
    if model is None:
        default = [candidate for candidate in models if candidate.name == DEFAULT_MODEL_NAME]
        if len(models) == 1 or default:
            return (default or models)[0]
        if not models:
            raise typer.BadParameter("no model is registered (or visible to this key)")
        names = ", ".join(candidate.name for candidate in models)
        raise typer.BadParameter(f"several models ({names}): choose one with --model")
    for candidate in models:
        if model in (candidate.id, candidate.name):
            return candidate
    raise typer.BadParameter(f"no model named or with id {model!r}")


def version_ref(service: ServiceClient, model: ModelOut, version: str) -> VersionRef:
    """What the API is sent for ``version``: a number as a number, an id as it is (the API
    takes either wherever it takes a version); ``latest`` is the highest number."""
    if version == "latest":
        versions = service.list_versions(model.id)
        if not versions:
            raise typer.BadParameter(f"model {model.name} has no versions")
        return max(row.number for row in versions)
    return version_reference(version)


def image_folder(folder: Path) -> list[tuple[Path, str]]:
    """``(image path, label)`` pairs of an ImageFolder layout (one sub-folder per label)."""
    pairs = [
        (path, label_dir.name)
        for label_dir in sorted(p for p in folder.iterdir() if p.is_dir())
        for path in sorted(label_dir.iterdir())
        if path.suffix.lower() in IMAGE_SUFFIXES
    ]
    if not pairs:
        raise typer.BadParameter(f"{folder} has no <label>/<image> files")
    return pairs


def follow_job(service: ServiceClient, job_id: str) -> JobOut:
    """Follow a job through its events (server-sent; a dropped connection resumes after the
    last event seen) until it ends, with a progress bar on stderr: status and phase, training
    step k/n, the estimated training time left and the time elapsed; returns the final job."""
    job = service.get_job(job_id)
    status, phase = job.status, job.progress.phase
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("{task.fields[eta]}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
    ) as progress:
        task = progress.add_task(
            f"{status} {phase}",
            total=job.progress.total or None,
            completed=job.progress.step,
            eta=_eta(job.progress.eta_s),
        )
        for event in service.job_events(job_id):
            data = event.data
            if event.type == JobEventType.STATUS:
                status = data["status"]
            elif event.type == JobEventType.PHASE:
                phase = data["phase"]
                progress.update(task, eta="")
            elif event.type == JobEventType.PROGRESS:
                progress.update(
                    task,
                    completed=data["step"],
                    total=data["total"] or None,
                    eta=_eta(data.get("eta_s")),
                )
            progress.update(task, description=f"{status} {phase}")
    return service.get_job(job_id)


def _eta(seconds: float | None) -> str:
    return "" if seconds is None else f"~{seconds:.0f}s left"


def _hyperparameters(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise typer.BadParameter(f"--hyperparameters is not JSON: {error}") from None
    if not isinstance(value, dict):
        raise typer.BadParameter("--hyperparameters must be a JSON object")
    return value


# -- inference ------------------------------------------------------------------------------
@app.command()
def classify(
    ctx: typer.Context,
    images: Annotated[list[Path], typer.Argument(exists=True, dir_okay=False, help="images")],
    label: Annotated[
        list[str], typer.Option("--label", "-l", help="a candidate label (repeat the option)")
    ],
    version: PinnedVersionOption = None,
    model: ModelOption = None,
    as_json: JsonOption = False,
) -> None:
    """Classify images among candidate labels with the active (or a pinned) version."""
    service = _service(ctx)
    target = resolve_model(service, model)
    pinned = None if version is None else version_ref(service, target, version)
    answer = service.classify(target.id, images, label, pinned)
    if as_json:
        render.print_json(answer)
    else:
        render.print_table(render.classify_table(target, images, answer))


@app.command()
def ask(
    ctx: typer.Context,
    image: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="an image")],
    question: Annotated[str, typer.Argument(help="the question about the image")],
    version: PinnedVersionOption = None,
    max_tokens: Annotated[int, typer.Option(help="most tokens in the answer")] = 32,
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="generative model name or id (default: the first)"),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Ask a generative (llava) model a question about an image; streams the answer.

    With --json: the whole completion as the API answers it, not streamed."""
    service = _service(ctx)
    if model is not None:
        target = resolve_model(service, model)
    else:
        generative = [candidate for candidate in service.list_models() if candidate.generative]
        if not generative:
            raise typer.BadParameter("no generative model is registered")
        target = generative[0]
    pinned = None if version is None else version_ref(service, target, version)
    if as_json:
        completion = service.complete_chat(target.name, image, question, max_tokens, pinned)
        render.print_json(completion)
        return
    number = None
    for chunk in service.stream_chat(target.name, image, question, max_tokens, pinned):
        number = chunk.version_number
        typer.echo(chunk.choices[0].delta.content or "", nl=False)
    typer.echo(f"\n({target.name} version {number})")


# -- corrections and jobs -------------------------------------------------------------------
@app.command()
def correct(
    ctx: typer.Context,
    folder: Annotated[Path, typer.Argument(exists=True, file_okay=False, help="<label>/<image>")],
    model: ModelOption = None,
    method: Annotated[str | None, typer.Option(help="update method (default lorsu)")] = None,
    hyperparameters: Annotated[str | None, typer.Option(help="JSON object")] = None,
    seed: Annotated[int | None, typer.Option(help="random seed")] = None,
    target_set: Annotated[
        list[str] | None,
        typer.Option(help="a target eval set this fixes (repeat): TI is measured on these"),
    ] = None,
    follow: Annotated[bool, typer.Option("--follow/--no-follow")] = True,
    as_json: JsonOption = False,
) -> None:
    """Submit a folder of corrected images and follow the job to its new version.

    With --json: one object, {"correction", "job", "version"} (the last two null with
    --no-follow)."""
    service = _service(ctx)
    target = resolve_model(service, model)
    accepted = service.submit_correction(
        target.id,
        image_folder(folder),
        method,
        _hyperparameters(hyperparameters),
        seed,
        target_sets=target_set or (),
    )
    if not as_json:
        typer.echo(render.correction_summary(accepted))
    job = follow_job(service, accepted.job_id) if follow else None
    version = (
        service.get_version(target.id, job.result_version_id)
        if job is not None and job.result_version_id is not None
        else None
    )
    if as_json:
        render.print_json({"correction": accepted, "job": job, "version": version})
    elif version is not None:
        typer.echo(render.version_summary(version))
    if job is not None and job.status != JobStatus.SUCCEEDED:
        failure = "" if job.error is None else f": {job.error.code} {job.error.message}"
        typer.secho(f"job {job.status}{failure}", fg="red", err=True)
        raise typer.Exit(1)


@app.command()
def jobs(
    ctx: typer.Context,
    job_id: Annotated[
        str | None, typer.Argument(help="one job (default: the model's jobs)")
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow/--no-follow", help="with a job id: follow it to its end")
    ] = False,
    limit: Annotated[int, typer.Option(help="how many of the newest jobs")] = 20,
    model: ModelOption = None,
    as_json: JsonOption = False,
) -> None:
    """The model's jobs, newest first; or one job, optionally followed to its end."""
    service = _service(ctx)
    if job_id is not None:
        job = follow_job(service, job_id) if follow else service.get_job(job_id)
        if as_json:
            render.print_json(job)
        else:
            render.print_table(render.job_table(job))
        return
    target = resolve_model(service, model)
    rows = service.list_jobs(target.id, limit)
    if as_json:
        render.print_json(rows)
        return
    numbers = render.version_numbers(service.list_versions(target.id))
    render.print_table(render.jobs_table(target, rows, numbers))


# -- versions and the active pointer ------------------------------------------------------
@app.command()
def versions(ctx: typer.Context, model: ModelOption = None, as_json: JsonOption = False) -> None:
    """A table of the model's versions with their TI / CC and gate decision (for a
    generative model, also TI / CC of its generated answers, which its gate judges)."""
    service = _service(ctx)
    target = resolve_model(service, model)
    rows = service.list_versions(target.id)
    if as_json:
        render.print_json(rows)
    else:
        render.print_table(render.versions_table(target, rows))


@app.command()
def activate(
    ctx: typer.Context,
    version: VersionArgument,
    reason: ReasonOption = "",
    model: ModelOption = None,
    as_json: JsonOption = False,
) -> None:
    """Make a version active (e.g. one the activation gate held back)."""
    service = _service(ctx)
    target = resolve_model(service, model)
    ref = version_ref(service, target, version)
    try:
        move = service.activate(target.id, ref, reason)
    except ApiError as error:
        if error.code != "version_already_active":
            raise
        # The gate may already have activated it: the goal is reached, nothing to do.
        row = service.get_version(target.id, ref)
        if as_json:
            render.print_json(row)
        else:
            typer.echo(f"version {row.number} of {target.name} is already active")
        return
    _print_move(service, target, move, as_json)


@app.command()
def rollback(
    ctx: typer.Context,
    version: VersionArgument,
    reason: ReasonOption = "",
    model: ModelOption = None,
    as_json: JsonOption = False,
) -> None:
    """Re-activate an earlier version of the model."""
    service = _service(ctx)
    target = resolve_model(service, model)
    move = service.rollback(target.id, version_ref(service, target, version), reason)
    _print_move(service, target, move, as_json)


def _print_move(
    service: ServiceClient, model: ModelOut, move: DeploymentOut, as_json: bool
) -> None:
    if as_json:
        render.print_json(move)
        return
    numbers = render.version_numbers(service.list_versions(model.id))
    render.print_table(render.deployments_table(model, [move], numbers, title=move.action))


@app.command()
def deployments(ctx: typer.Context, model: ModelOption = None, as_json: JsonOption = False) -> None:
    """The history of the model's active version: every activation and rollback, who, why."""
    service = _service(ctx)
    target = resolve_model(service, model)
    rows = service.list_deployments(target.id)
    if as_json:
        render.print_json(rows)
        return
    numbers = render.version_numbers(service.list_versions(target.id))
    render.print_table(render.deployments_table(target, rows, numbers, title="deployments"))


@app.command()
def export(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="model name or id")],
    version: VersionArgument,
    out: Annotated[Path, typer.Option("--out", "-o", help="the checkpoint directory to write")],
    force: Annotated[
        bool,
        typer.Option(help="write into a non-empty --out (files of the same name are replaced)"),
    ] = False,
) -> None:
    """Download a version as a Hugging Face checkpoint directory (admin key) that
    transformers' from_pretrained, vLLM or TGI load: config.json, model.safetensors (the base
    with the version's image encoder), tokenizer and processor files, a model card."""
    if out.exists() and not out.is_dir():
        raise typer.BadParameter(f"{out} is a file, not a directory", param_hint="--out")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise typer.BadParameter(
            f"{out} is not empty: name a new or empty directory, or give --force",
            param_hint="--out",
        )
    service = _service(ctx)
    target = resolve_model(service, model)
    row = service.get_version(target.id, version_ref(service, target, version))
    out.parent.mkdir(parents=True, exist_ok=True)
    # Unpacked beside --out first: a failed download leaves --out as it was.
    with tempfile.TemporaryDirectory(prefix=".vlmc-export-", dir=out.parent) as scratch:
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
        ) as progress:
            task = progress.add_task(f"{target.name} version {row.number}", total=None)
            folder = service.download_export(
                target.id,
                row.id,
                Path(scratch),
                lambda done, total: progress.update(task, completed=done, total=total),
            )
        files = sorted(folder.iterdir())
        out.mkdir(exist_ok=True)
        for path in files:
            path.replace(out / path.name)
    typer.echo(
        f"version {row.number} of {target.name} exported to {out}: "
        + ", ".join(path.name for path in files)
    )


# -- storage lifecycle (admin key) --------------------------------------------------------
@app.command()
def archive(
    ctx: typer.Context,
    version: Annotated[str, typer.Argument(help="version number or id")],
    model: ModelOption = None,
    as_json: JsonOption = False,
) -> None:
    """Archive a version nothing retained needs (it stops serving; its blobs become
    collectable by `vlmc storage gc`)."""
    service = _service(ctx)
    target = resolve_model(service, model)
    archived = service.archive_version(target.id, version_ref(service, target, version))
    if as_json:
        render.print_json(archived)
    else:
        typer.echo(f"version {archived.number} of {target.name} archived")


eval_sets = typer.Typer(help="Evaluation sets of a model: list; delete (admin key).")
app.add_typer(eval_sets, name="eval-sets", no_args_is_help=True)


@eval_sets.command("list")
def list_eval_sets(
    ctx: typer.Context, model: ModelOption = None, as_json: JsonOption = False
) -> None:
    """The model's evaluation sets: kind, size, labels."""
    service = _service(ctx)
    target = resolve_model(service, model)
    rows = service.list_eval_sets(target.id)
    if as_json:
        render.print_json(rows)
    else:
        render.print_table(render.eval_sets_table(target, rows))


@eval_sets.command("delete")
def delete_eval_set(
    ctx: typer.Context,
    eval_set: Annotated[str, typer.Argument(help="the set's name or id")],
    model: ModelOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete an evaluation set (refused while a job of the model is running).

    With --json: the set that was deleted."""
    service = _service(ctx)
    target = resolve_model(service, model)
    matches = [row for row in service.list_eval_sets(target.id) if eval_set in (row.id, row.name)]
    if not matches:
        raise typer.BadParameter(f"model {target.name} has no eval set {eval_set!r}")
    service.delete_eval_set(target.id, matches[0].id)
    if as_json:
        render.print_json(matches[0])
    else:
        typer.echo(f"eval set {matches[0].name} of {target.name} deleted")


models = typer.Typer(help="Registered models (admin key): delete.")
app.add_typer(models, name="models", no_args_is_help=True)


@models.command("delete")
def delete_model(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="the model's name or id")],
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="delete without asking for confirmation")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Delete a model with all it holds: versions, deployment history, jobs, corrections,
    eval sets, and the blobs no other model shares. It cannot be undone; it is refused while
    a job of the model has not ended or an active API key is restricted to it."""
    service = _service(ctx)
    target = resolve_model(service, model)
    if not yes:
        versions = len(service.list_versions(target.id))
        typer.confirm(
            f"Delete model {target.name} ({target.id}) and its {versions} version(s)? "
            "This cannot be undone",
            abort=True,
            err=True,
        )
    deleted = service.delete_model(target.id)
    if as_json:
        render.print_json(deleted)
    else:
        typer.echo(render.model_deleted_summary(deleted))


storage = typer.Typer(help="The blob store (admin key): usage, garbage collection.")
app.add_typer(storage, name="storage", no_args_is_help=True)


@storage.command("usage")
def storage_usage(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """How many blobs are stored and their total size."""
    usage = _service(ctx).storage_usage()
    if as_json:
        render.print_json(usage)
    else:
        typer.echo(render.storage_usage_summary(usage))


@storage.command("gc")
def storage_gc(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run/--delete", help="only report what would be deleted")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Delete the blobs nothing retained needs (archived versions, deleted eval sets); blobs
    stored within the grace period are kept."""
    report = _service(ctx).collect_garbage(dry_run)
    if as_json:
        render.print_json(report)
    else:
        typer.echo(render.garbage_collection_summary(report))


# -- API keys (admin key) -----------------------------------------------------------------
keys = typer.Typer(help="API keys (admin key): create, list, revoke.")
app.add_typer(keys, name="keys", no_args_is_help=True)


@keys.command("create")
def create_key(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="who or what holds the key")],
    scope: Annotated[
        list[str],
        typer.Option("--scope", "-s", help="inference, corrections or admin (repeat)"),
    ],
    model: Annotated[
        list[str] | None,
        typer.Option("--model", "-m", help="restrict the key to this model, name or id (repeat)"),
    ] = None,
    expires_in_days: Annotated[
        float | None, typer.Option(help="the key stops working after this many days")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Create a key; it is printed once (only its hash is stored)."""
    service = _service(ctx)
    model_ids = [resolve_model(service, one).id for one in model or ()]
    expires_at = (
        None if expires_in_days is None else datetime.now(UTC) + timedelta(days=expires_in_days)
    )
    created = service.create_api_key(name, scope, model_ids, expires_at)
    if as_json:
        render.print_json(created)
    else:
        typer.echo(render.created_key_summary(created))


@keys.command("list")
def list_keys(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Every key: scopes, models, expiry, last use, revocation (never the key itself)."""
    rows = _service(ctx).list_api_keys()
    if as_json:
        render.print_json(rows)
    else:
        render.print_table(render.keys_table(rows))


@keys.command("revoke")
def revoke_key(
    ctx: typer.Context,
    key_id: Annotated[str, typer.Argument(help="the key's id (from `vlmc keys list`)")],
    as_json: JsonOption = False,
) -> None:
    """Revoke a key (the last active admin key cannot be revoked)."""
    revoked = _service(ctx).revoke_api_key(key_id)
    if as_json:
        render.print_json(revoked)
    else:
        typer.echo(render.revoked_key_summary(revoked))
