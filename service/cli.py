"""The ``vlmc`` command line.

Server side: ``serve`` runs the whole embedded default on one machine (migrations, base model,
API, and a worker process on the serverless broker); ``worker`` runs an update worker.
Client side, over HTTP (``--url`` / ``VLMC_URL``, ``--api-key`` / ``VLMC_API_KEY``), one
command per step of the README's walk-through: ``classify``, ``correct``, ``jobs``,
``versions``, ``activate``, ``rollback``, and ``keys create | list | revoke``; storage
lifecycle (admin key): ``archive``, ``eval-sets delete``, ``storage usage | gc``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from service.jobs.statuses import TERMINAL_STATUSES, JobStatus

app = typer.Typer(
    help="vlm-correct: keep deployed CLIP-style models correct.", no_args_is_help=True
)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}

UrlOption = Annotated[str, typer.Option("--url", envvar="VLMC_URL", help="base URL of the service")]
KeyOption = Annotated[
    str | None,
    typer.Option("--api-key", envvar=["VLMC_API_KEY", "ADMIN_API_KEY"], help="API key"),
]
ModelOption = Annotated[
    str | None, typer.Option("--model", "-m", help="model name or id (default: the only one)")
]


# -- server side ---------------------------------------------------------------------------
def ensure_default_model() -> None:
    """Build the stand-in base model if missing and register it (with control sets) when no
    model exists. Runs in a child process: building is training code, which the API process
    never imports."""
    subprocess.run(
        [sys.executable, "-m", "standin.basemodel.default_model"], check=True, env=os.environ.copy()
    )


def _die_with_parent() -> None:
    # uvicorn re-raises SIGTERM/SIGINT after its shutdown, so serve's own cleanup may never
    # run; the kernel then stops the embedded worker when serve exits (Linux), however it exits.
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _worker_process() -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        _worker_command(),
        env=os.environ.copy(),
        preexec_fn=_die_with_parent,
    )


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to bind")] = 8000,
    worker: Annotated[
        bool, typer.Option("--worker/--no-worker", help="start an embedded worker process")
    ] = True,
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="API processes (uvicorn workers)")
    ] = 1,
) -> None:
    """Migrate, ensure the base model, start the API (and an embedded worker).

    With ``--workers N`` uvicorn runs N API processes on the port, each with its own serving
    cache; they learn each other's pointer moves (README, "Several API processes")."""
    import uvicorn
    from transformers.utils import logging as transformers_logging

    from service.app import create_app
    from service.db.migrate import upgrade_head
    from service.settings import get_settings

    transformers_logging.disable_progress_bar()
    settings = get_settings()
    settings.ensure_directories()
    upgrade_head(settings.database_url)
    ensure_default_model()
    process = _worker_process() if worker else None
    try:
        if workers == 1:
            uvicorn.run(create_app(settings), host=host, port=port, log_level="info")
        else:
            _serve_processes(settings, host, port, workers)
    finally:
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def _serve_processes(settings: Any, host: str, port: int, workers: int) -> None:
    import uvicorn

    from service.app import seed_and_show_admin_key
    from service.db.session import create_db_engine, create_session_factory

    # Seeded once here, so N processes starting together do not each generate a key.
    engine = create_db_engine(settings.database_url)
    try:
        seed_and_show_admin_key(create_session_factory(engine), settings)
    finally:
        engine.dispose()
    # Each process builds the app from the same environment (VLMC_*).
    uvicorn.run(
        "service.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
    )


def _worker_command(concurrency: int = 1, loglevel: str = "INFO") -> list[str]:
    # A process of its own: the CLI (and the API it serves) never imports worker code.
    return [
        sys.executable,
        "-m",
        "workers.main",
        f"--concurrency={concurrency}",
        f"--loglevel={loglevel}",
    ]


@app.command()
def worker(
    concurrency: Annotated[
        int,
        typer.Option(
            envvar="VLMC_WORKER_CONCURRENCY", help="jobs at a time (one per GPU; >1: prefork)"
        ),
    ] = 1,
    loglevel: Annotated[str, typer.Option(help="Celery log level")] = "INFO",
) -> None:
    """Run an update worker on the configured broker (consumes the updates queue)."""
    command = _worker_command(concurrency, loglevel)
    os.execv(command[0], command)


# -- client side ---------------------------------------------------------------------------
def _client(url: str, api_key: str | None) -> Any:
    import httpx

    if not api_key:
        raise typer.BadParameter("give --api-key or set VLMC_API_KEY")
    return httpx.Client(
        base_url=url.rstrip("/"), headers={"Authorization": f"Bearer {api_key}"}, timeout=120
    )


def _check(response: Any) -> Any:
    if response.status_code >= 400:
        try:
            error = response.json()["error"]
            message = f"{error['code']}: {error['message']}"
        except (ValueError, KeyError, TypeError):
            message = response.text
        typer.secho(f"error ({response.status_code}) {message}", fg="red", err=True)
        raise typer.Exit(1)
    return response.json()


def _resolve_model(client: Any, model: str | None) -> dict[str, Any]:
    from service.settings import DEFAULT_MODEL_NAME

    models = _check(client.get("/v1/models"))
    if model is None:
        # The only model, or else the embedded default's dual encoder (registered first, beside
        # its VLM).
        default = [m for m in models if m["name"] == DEFAULT_MODEL_NAME]
        if len(models) == 1 or default:
            return dict((default or models)[0])
        names = ", ".join(m["name"] for m in models) or "none"
        raise typer.BadParameter(f"several models ({names}): choose one with --model")
    for candidate in models:
        if model in (candidate["id"], candidate["name"]):
            return dict(candidate)
    raise typer.BadParameter(f"no model named or with id {model!r}")


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


def follow_job(client: Any, job_id: str, poll_s: float = 1.0) -> dict[str, Any]:
    """Poll a job with a progress bar until it ends; returns the final job."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
    ) as progress:
        task = progress.add_task(JobStatus.QUEUED, total=None)
        while True:
            job = _check(client.get(f"/v1/jobs/{job_id}"))
            step, total = job["progress"]["step"], job["progress"]["total"]
            progress.update(task, description=job["status"], completed=step, total=total or None)
            if job["status"] in TERMINAL_STATUSES:
                return dict(job)
            time.sleep(poll_s)


@app.command()
def correct(
    folder: Annotated[Path, typer.Argument(exists=True, file_okay=False, help="<label>/<image>")],
    url: UrlOption = "http://127.0.0.1:8000",
    api_key: KeyOption = None,
    model: ModelOption = None,
    method: Annotated[str | None, typer.Option(help="update method (default lorsu)")] = None,
    hyperparameters: Annotated[str | None, typer.Option(help="JSON object")] = None,
    seed: Annotated[int | None, typer.Option(help="random seed")] = None,
    follow: Annotated[bool, typer.Option("--follow/--no-follow")] = True,
) -> None:
    """Submit a folder of corrected images and follow the job to its new version."""
    client = _client(url, api_key)
    target = _resolve_model(client, model)
    pairs = image_folder(folder)
    data: dict[str, Any] = {"labels": [label for _path, label in pairs]}
    for name, value in (("method", method), ("hyperparameters", hyperparameters), ("seed", seed)):
        if value is not None:
            data[name] = str(value)
    files = [("images", (path.name, path.read_bytes())) for path, _label in pairs]
    accepted = _check(client.post(f"/v1/models/{target['id']}/corrections", files=files, data=data))
    typer.echo(
        f"correction {accepted['correction_id']}: {accepted['examples']} examples, "
        f"job {accepted['job_id']}\n  {accepted['note']}"
    )
    if not follow:
        return
    job = follow_job(client, accepted["job_id"])
    if job["status"] != JobStatus.SUCCEEDED:
        error = job.get("error") or {}
        typer.secho(f"job {job['status']}: {error.get('code')} {error.get('message')}", fg="red")
        raise typer.Exit(1)
    version = _check(client.get(f"/v1/models/{target['id']}/versions/{job['result_version_id']}"))
    evaluation = version.get("evaluation") or {}
    gate = version.get("gate") or {}
    typer.echo(
        f"version {version['number']} ({version['status']}, "
        f"{'active' if version['active'] else 'not active'}): "
        f"TI={evaluation.get('ti')} CC={evaluation.get('cc')}"
    )
    for reason in gate.get("reasons", []):
        typer.echo(f"  gate: {reason}")


@app.command()
def versions(
    url: UrlOption = "http://127.0.0.1:8000",
    api_key: KeyOption = None,
    model: ModelOption = None,
) -> None:
    """A table of the model's versions with their TI / CC and gate decision (for a
    generative model, also TI / CC of its generated answers, which its gate judges)."""
    from rich.console import Console
    from rich.table import Table

    client = _client(url, api_key)
    target = _resolve_model(client, model)
    table = Table(title=f"{target['name']} ({target['id']})")
    answers = ("answer TI", "answer CC") if target.get("generative") else ()
    columns = ("#", "id", "status", "method", "TI", "CC", *answers, "gate", "parent", "created")
    for column in (*columns, "active"):
        table.add_column(column)
    rows = _check(client.get(f"/v1/models/{target['id']}/versions"))
    numbers = _version_numbers(rows)
    for row in rows:
        evaluation = row["evaluation"] or {}
        gate = row["gate"]
        answer_figures = (
            (_number(evaluation.get("answer_ti")), _number(evaluation.get("answer_cc")))
            if answers
            else ()
        )
        table.add_row(
            str(row["number"]),
            row["id"][:8],
            row["status"],
            row["method"],
            _number(evaluation.get("ti")),
            _number(evaluation.get("cc")),
            *answer_figures,
            "" if gate is None else ("activated" if gate["activated"] else "held"),
            str(numbers.get(row["parent_id"], "")),
            row["created_at"][:19],
            "*" if row["active"] else "",
        )
    Console().print(table)


def _version_numbers(versions: list[dict[str, Any]]) -> dict[str, int]:
    """Version id -> version number, from the model's version list."""
    return {row["id"]: row["number"] for row in versions}


def _number(value: Any) -> str:
    return f"{value:+.2f}" if isinstance(value, int | float) else ""


def _find_version(client: Any, target: dict[str, Any], version: str) -> dict[str, Any]:
    """A version by number, id, or ``latest`` (the highest number)."""
    rows = _check(client.get(f"/v1/models/{target['id']}/versions"))
    if version == "latest" and rows:
        return dict(max(rows, key=lambda row: row["number"]))
    for row in rows:
        if version in (row["id"], str(row["number"])):
            return dict(row)
    raise typer.BadParameter(f"model {target['name']} has no version {version!r}")


def _move_pointer(
    action: str, version: str, reason: str, url: str, api_key: str | None, model: str | None
) -> None:
    client = _client(url, api_key)
    target = _resolve_model(client, model)
    row = _find_version(client, target, version)
    if action == "activate" and row["active"]:
        # The gate may already have activated it: the goal is reached, nothing to do.
        typer.echo(f"version {row['number']} of {target['name']} is already active")
        return
    moved = _check(
        client.post(
            f"/v1/models/{target['id']}/{action}",
            json={"version_id": row["id"], "reason": reason},
        )
    )
    typer.echo(json.dumps(moved, indent=2))


VersionArgument = Annotated[str, typer.Argument(help="version number, id, or 'latest'")]
ReasonOption = Annotated[str, typer.Option(help="why (kept in the deployment history)")]


@app.command()
def activate(
    version: VersionArgument,
    reason: ReasonOption = "",
    url: UrlOption = "http://127.0.0.1:8000",
    api_key: KeyOption = None,
    model: ModelOption = None,
) -> None:
    """Make a version active (e.g. one the activation gate held back)."""
    _move_pointer("activate", version, reason, url, api_key, model)


@app.command()
def rollback(
    version: VersionArgument,
    reason: ReasonOption = "",
    url: UrlOption = "http://127.0.0.1:8000",
    api_key: KeyOption = None,
    model: ModelOption = None,
) -> None:
    """Re-activate an earlier version of the model."""
    _move_pointer("rollback", version, reason, url, api_key, model)


@app.command()
def classify(
    images: Annotated[list[Path], typer.Argument(exists=True, dir_okay=False, help="images")],
    label: Annotated[
        list[str], typer.Option("--label", "-l", help="a candidate label (repeat the option)")
    ],
    version: Annotated[
        str | None, typer.Option(help="answer with this version (number or id), not the active")
    ] = None,
    url: UrlOption = "http://127.0.0.1:8000",
    api_key: KeyOption = None,
    model: ModelOption = None,
) -> None:
    """Classify images among candidate labels with the active (or a pinned) version."""
    from rich.console import Console
    from rich.table import Table

    client = _client(url, api_key)
    target = _resolve_model(client, model)
    data: dict[str, Any] = {"labels": label}
    if version is not None:
        data["version_id"] = _find_version(client, target, version)["id"]
    files = [("images", (path.name, path.read_bytes())) for path in images]
    answer = _check(client.post(f"/v1/models/{target['id']}/classify", files=files, data=data))
    table = Table(title=f"{target['name']} version {answer['version_number']}")
    for column in ("image", "label", "probability"):
        table.add_column(column)
    for path, prediction in zip(images, answer["predictions"], strict=True):
        probability = prediction["probabilities"][prediction["label"]]
        table.add_row(str(path), prediction["label"], f"{probability:.3f}")
    Console(width=120).print(table)


@app.command()
def ask(
    image: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="an image")],
    question: Annotated[str, typer.Argument(help="the question about the image")],
    version: Annotated[
        str | None, typer.Option(help="answer with this version (number or id), not the active")
    ] = None,
    max_tokens: Annotated[int, typer.Option(help="most tokens in the answer")] = 32,
    url: UrlOption = "http://127.0.0.1:8000",
    api_key: KeyOption = None,
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="generative model name or id")
    ] = None,
) -> None:
    """Ask a generative (llava) model a question about an image; streams the answer."""
    import base64
    import mimetypes

    client = _client(url, api_key)
    models = [m for m in _check(client.get("/v1/models")) if m.get("generative")]
    target = _resolve_model(client, model) if model else (models or [None])[0]
    if target is None:
        raise typer.BadParameter("no generative model is registered")
    mime = mimetypes.guess_type(image.name)[0] or "image/png"
    picture = f"data:{mime};base64," + base64.b64encode(image.read_bytes()).decode()
    body: dict[str, Any] = {
        "model": target["name"],
        "max_tokens": max_tokens,
        "stream": True,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": picture}},
                    {"type": "text", "text": question},
                ],
            }
        ],
    }
    if version is not None:
        body["version_id"] = _find_version(client, target, version)["id"]
    number = None
    with client.stream("POST", "/v1/chat/completions", json=body) as response:
        if response.status_code >= 400:
            response.read()
            _check(response)
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line.removeprefix("data: "))
            number = chunk["version_number"]
            typer.echo(chunk["choices"][0]["delta"].get("content", ""), nl=False)
    typer.echo(f"\n({target['name']} version {number})")


@app.command()
def jobs(
    job_id: Annotated[
        str | None, typer.Argument(help="one job (default: the model's jobs)")
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow/--no-follow", help="with a job id: follow it to its end")
    ] = False,
    limit: Annotated[int, typer.Option(help="how many of the newest jobs")] = 20,
    url: UrlOption = "http://127.0.0.1:8000",
    api_key: KeyOption = None,
    model: ModelOption = None,
) -> None:
    """The model's jobs, newest first; or one job (as JSON), optionally followed to its end."""
    from rich.console import Console
    from rich.table import Table

    client = _client(url, api_key)
    if job_id is not None:
        job = follow_job(client, job_id) if follow else _check(client.get(f"/v1/jobs/{job_id}"))
        typer.echo(json.dumps(job, indent=2))
        return
    target = _resolve_model(client, model)
    rows = _check(client.get(f"/v1/models/{target['id']}/jobs", params={"limit": limit}))
    table = Table(title=f"jobs of {target['name']}")
    for column in ("id", "status", "method", "progress", "version", "error", "created"):
        table.add_column(column)
    numbers = _version_numbers(_check(client.get(f"/v1/models/{target['id']}/versions")))
    for row in rows:
        error = row["error"] or {}
        table.add_row(
            row["id"],
            row["status"],
            row["method"],
            f"{row['progress']['step']}/{row['progress']['total']}",
            str(numbers.get(row["result_version_id"], "")),
            error.get("code", ""),
            row["created_at"][:19],
        )
    Console(width=160).print(table)


@app.command()
def deployments(
    url: UrlOption = "http://127.0.0.1:8000",
    api_key: KeyOption = None,
    model: ModelOption = None,
) -> None:
    """The history of the model's active version: every activation and rollback, who, why."""
    from rich.console import Console
    from rich.table import Table

    client = _client(url, api_key)
    target = _resolve_model(client, model)
    numbers = _version_numbers(_check(client.get(f"/v1/models/{target['id']}/versions")))
    table = Table(title=f"deployments of {target['name']}")
    for column in ("when", "action", "from", "to", "actor", "reason"):
        table.add_column(column)
    for row in _check(client.get(f"/v1/models/{target['id']}/deployments")):
        table.add_row(
            row["created_at"][:19],
            row["action"],
            str(numbers.get(row["from_version_id"], "")),
            str(numbers[row["to_version_id"]]),
            row["actor"],
            row["reason"],
        )
    Console(width=160).print(table)


@app.command()
def archive(
    version: Annotated[str, typer.Argument(help="version number or id")],
    url: UrlOption = "http://127.0.0.1:8000",
    api_key: KeyOption = None,
    model: ModelOption = None,
) -> None:
    """Archive a version nothing retained needs (it stops serving; its blobs become
    collectable by `vlmc storage gc`)."""
    client = _client(url, api_key)
    target = _resolve_model(client, model)
    row = _find_version(client, target, version)
    archived = _check(client.post(f"/v1/models/{target['id']}/versions/{row['id']}/archive"))
    typer.echo(f"version {archived['number']} of {target['name']} archived")


eval_sets = typer.Typer(help="Evaluation sets of a model (admin key).", no_args_is_help=True)
app.add_typer(eval_sets, name="eval-sets")


@eval_sets.command("delete")
def delete_eval_set(
    eval_set: Annotated[str, typer.Argument(help="the set's name or id")],
    url: UrlOption = "http://127.0.0.1:8000",
    api_key: KeyOption = None,
    model: ModelOption = None,
) -> None:
    """Delete an evaluation set (refused while a job of the model is running)."""
    client = _client(url, api_key)
    target = _resolve_model(client, model)
    rows = _check(client.get(f"/v1/models/{target['id']}/eval-sets"))
    matches = [row for row in rows if eval_set in (row["id"], row["name"])]
    if not matches:
        raise typer.BadParameter(f"model {target['name']} has no eval set {eval_set!r}")
    response = client.delete(f"/v1/models/{target['id']}/eval-sets/{matches[0]['id']}")
    if response.status_code != 204:
        _check(response)
    typer.echo(f"eval set {matches[0]['name']} of {target['name']} deleted")


storage = typer.Typer(help="The blob store (admin key): usage, garbage collection.")
app.add_typer(storage, name="storage", no_args_is_help=True)


@storage.command("usage")
def storage_usage(url: UrlOption = "http://127.0.0.1:8000", api_key: KeyOption = None) -> None:
    """How many blobs are stored and their total size."""
    usage = _check(_client(url, api_key).get("/v1/storage"))
    typer.echo(f"{usage['blobs']} blobs, {usage['bytes']} bytes")


@storage.command("gc")
def storage_gc(
    dry_run: Annotated[
        bool, typer.Option("--dry-run/--delete", help="only report what would be deleted")
    ] = False,
    url: UrlOption = "http://127.0.0.1:8000",
    api_key: KeyOption = None,
) -> None:
    """Delete the blobs nothing retained needs (archived versions, deleted eval sets); blobs
    stored within the grace period are kept."""
    report = _check(_client(url, api_key).post("/v1/storage/gc", json={"dry_run": dry_run}))
    verb = "would delete" if report["dry_run"] else "deleted"
    typer.echo(
        f"scanned {report['scanned_blobs']} blobs: {report['referenced_blobs']} referenced, "
        f"{report['recent_blobs']} within the {report['grace_s']:g}s grace period; "
        f"{verb} {report['deleted_blobs']} ({report['freed_bytes']} bytes)"
    )


keys = typer.Typer(help="API keys (admin key): create, list, revoke.", no_args_is_help=True)
app.add_typer(keys, name="keys")


@keys.command("create")
def create_key(
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
    url: UrlOption = "http://127.0.0.1:8000",
    api_key: KeyOption = None,
) -> None:
    """Create a key; it is printed once (only its hash is stored)."""
    from datetime import UTC, datetime, timedelta

    client = _client(url, api_key)
    body: dict[str, Any] = {"name": name, "scopes": scope}
    if model:
        body["model_ids"] = [_resolve_model(client, one)["id"] for one in model]
    if expires_in_days is not None:
        body["expires_at"] = (datetime.now(UTC) + timedelta(days=expires_in_days)).isoformat()
    created = _check(client.post("/v1/api-keys", json=body))
    typer.echo(f"key {created['id']} ({', '.join(created['scopes'])}); store it now:")
    typer.echo(created["key"])


@keys.command("list")
def list_keys(url: UrlOption = "http://127.0.0.1:8000", api_key: KeyOption = None) -> None:
    """Every key: scopes, models, expiry, last use, revocation (never the key itself)."""
    from rich.console import Console
    from rich.table import Table

    client = _client(url, api_key)
    table = Table(title="API keys")
    for column in ("id", "name", "prefix", "scopes", "models", "expires", "last used", "revoked"):
        table.add_column(column)
    for row in _check(client.get("/v1/api-keys")):
        table.add_row(
            row["id"],
            row["name"],
            row["prefix"],
            ",".join(row["scopes"]),
            "all" if row["model_ids"] is None else ",".join(row["model_ids"]),
            (row["expires_at"] or "")[:19],
            (row["last_used_at"] or "")[:19],
            (row["revoked_at"] or "")[:19],
        )
    Console(width=200).print(table)


@keys.command("revoke")
def revoke_key(
    key_id: Annotated[str, typer.Argument(help="the key's id (from `vlmc keys list`)")],
    url: UrlOption = "http://127.0.0.1:8000",
    api_key: KeyOption = None,
) -> None:
    """Revoke a key (the last active admin key cannot be revoked)."""
    client = _client(url, api_key)
    revoked = _check(client.delete(f"/v1/api-keys/{key_id}"))
    typer.echo(f"key {revoked['id']} ({revoked['name']}) revoked at {revoked['revoked_at']}")


if __name__ == "__main__":
    app()
