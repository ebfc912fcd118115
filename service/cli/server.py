"""The server commands of ``vlmc`` and the processes they manage.

``migrate`` is the one prestart step: it brings the database's schema to the latest revision
(nothing else migrates; the API refuses to start on an older schema). ``serve`` runs the whole
embedded default on one machine: it migrates (once, the same step), prepares the default
models in a child process, then starts the API (``--workers N``: N uvicorn processes) and an
update worker process. ``worker`` runs an update worker on the configured broker.

The API and the CLI never import worker code: the default models are prepared and the worker
runs in processes of their own (``python -m workers...``).
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
from typing import Annotated

import typer

from service.settings import Settings, get_settings

app = typer.Typer()


# -- migrate --------------------------------------------------------------------------------
def migrate_database(settings: Settings) -> None:
    """Bring the schema to the latest revision and say what changed. Runs under the startup
    lock, so several runs at once on one database migrate one after the other."""
    from sqlalchemy.engine import make_url

    from service.db.migrate import current_revision, head_revision, startup_lock, upgrade_head

    settings.ensure_directories()
    url = settings.database_url
    with startup_lock(url):
        before = current_revision(url)
        upgrade_head(url)
    head = head_revision()
    shown = make_url(url).render_as_string(hide_password=True)
    if before == head:
        typer.echo(f"database {shown}: schema already at revision {head}")
    else:
        typer.echo(f"database {shown}: schema migrated from {before or 'empty'} to {head}")


@app.command()
def migrate() -> None:
    """Bring the database's schema to the latest revision.

    The prestart step: run it before API processes start (`vlmc serve` runs it itself)."""
    migrate_database(get_settings())


# -- serve ----------------------------------------------------------------------------------
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
    standin: Annotated[
        bool,
        typer.Option(
            "--standin/--no-standin",
            help="assemble and register the stand-in demo models (the standin extra); "
            "--no-standin serves only the models registered through the API",
        ),
    ] = True,
) -> None:
    """Migrate, ensure the stand-in models, start the API (and an embedded worker).

    With ``--workers N`` uvicorn runs N API processes on the port, each with its own serving
    cache; they learn each other's pointer moves (README, "Several API processes")."""
    import uvicorn
    from transformers.utils import logging as transformers_logging

    from service.app import create_app

    transformers_logging.disable_progress_bar()
    settings = get_settings()
    migrate_database(settings)
    if standin:
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


def ensure_default_model() -> None:
    """Assemble the stand-in models if missing and register them (with their evaluation sets)
    when not registered yet. Runs in a child process: assembling is demo and worker code, which
    the API process never imports."""
    if importlib.util.find_spec("standin") is None:
        raise typer.BadParameter(
            "the stand-in demo models are not installed (pip install '.[standin]'); "
            "pass --no-standin to serve the models registered through the API",
            param_hint="--standin",
        )
    subprocess.run(
        [sys.executable, "-m", "standin.basemodel.default_model"], check=True, env=os.environ.copy()
    )


def _serve_processes(settings: Settings, host: str, port: int, workers: int) -> None:
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


# -- worker ---------------------------------------------------------------------------------
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


def _worker_command(concurrency: int = 1, loglevel: str = "INFO") -> list[str]:
    return [
        sys.executable,
        "-m",
        "workers.main",
        f"--concurrency={concurrency}",
        f"--loglevel={loglevel}",
    ]


def _worker_process() -> subprocess.Popen[bytes]:
    """``serve``'s embedded worker, stopped by the kernel if ``serve`` dies first."""
    return subprocess.Popen(_worker_command(), env=os.environ.copy(), preexec_fn=_die_with_parent)


def _die_with_parent() -> None:
    # uvicorn re-raises SIGTERM/SIGINT after its shutdown, so serve's own cleanup may never
    # run; the kernel then stops the embedded worker when serve exits (Linux), however it exits.
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
