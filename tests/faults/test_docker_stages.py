"""Each image starts with exactly the files its Dockerfile stage copies.

No container engine runs here, so each stage is assembled the way ``docker build`` would
assemble it: the Dockerfile's own ``COPY`` lines (and those of the stages it is built ``FROM``)
are read, exactly those files are copied into a temporary directory (the image's working
directory), the project is installed from there as the stage's ``pip install .`` does (into a
folder of its own, without dependencies), and the stage's processes are started with nothing
else of the project importable (``stage_isolation/sitecustomize.py`` hides the editable install
of this checkout). The third-party packages come from the test's virtual environment, which
holds what the stage's ``pip install`` would. Console scripts (``vlmc``) run from an empty
directory, as an installed script does; the server runs in the working directory.

- the ``api`` stage runs compose's migration step, serves ``/readyz``, the explorers and the
  dashboard (assets from the ``ui-assets`` stage) and validates corrections against the method
  catalogue, with no training code present;
- the ``worker`` stage, beside the ``api`` stage, runs a correction's job end to end on
  PostgreSQL and Redis.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from bench.load.processes import RedisServer, free_port, stop_process, wait_until
from bench.load.traffic import png_base64
from tests.conftest import ADMIN_KEY, create_postgres_database, drop_postgres_database
from tests.faults.cluster import register, submit, wait_for_status
from tests.worker.harness import Shots, fashion_shots

ROOT = Path(__file__).resolve().parents[2]
ISOLATION = Path(__file__).resolve().parent / "stage_isolation"
PROJECT_PACKAGES = ("catalogue", "service", "workers", "standin", "bench", "tests", "migrations")
_STAGE = re.compile(r"^FROM\s+(\S+)\s+AS\s+([\w-]+)\s*$", re.M | re.I)
# What the Dockerfile's helper stages produce, as this checkout holds it: the ui-assets stage
# runs scripts/fetch-ui-assets.sh, which `make install` ran here into this folder.
STAGE_OUTPUTS = {("ui-assets", "/vendor"): "service/webui/vendor"}
# .dockerignore's exclusions inside copied folders (the stage brings these in itself).
CONTEXT_EXCLUDED = ("vendor",)


def dockerfile_stages() -> dict[str, tuple[str, list[str]]]:
    """Each stage's name -> (the image or stage it is built from, its instruction lines)."""
    lines = (ROOT / "Dockerfile").read_text().replace("\\\n", " ").splitlines()
    stages: dict[str, tuple[str, list[str]]] = {}
    current: list[str] | None = None
    for line in lines:
        match = _STAGE.match(line)
        if match:
            current = []
            stages[match.group(2)] = (match.group(1), current)
        elif current is not None and line.strip() and not line.lstrip().startswith("#"):
            current.append(line.strip())
    return stages


def stage_copies(stage: str) -> list[tuple[str, str]]:
    """(source in the build context, destination under WORKDIR) of every ``COPY`` from the
    build context that ``stage`` holds, its parent stages' first."""
    stages = dockerfile_stages()
    parent, instructions = stages[stage]
    copies = stage_copies(parent) if parent in stages else []
    for instruction in instructions:
        words = instruction.split()
        if words[0].upper() != "COPY":
            continue
        if words[1].startswith("--from="):
            stage_name, source, destination = words[1].removeprefix("--from="), *words[2:]
            if (stage_name, source) in STAGE_OUTPUTS:
                copies.append((STAGE_OUTPUTS[(stage_name, source)], destination))
            continue
        *sources, destination = words[1:]
        copies += [(source, destination) for source in sources]
    return copies


def assemble(stage: str, into: Path) -> Path:
    """The files ``stage`` copies, laid out under ``into`` as under the image's WORKDIR."""
    ignored = shutil.ignore_patterns("__pycache__", "*.pyc")
    for source, destination in stage_copies(stage):
        origin = ROOT / source
        target = into / destination
        if origin.is_dir() and source in STAGE_OUTPUTS.values():
            shutil.copytree(origin, target, ignore=ignored)
        elif origin.is_dir():
            excluded = shutil.ignore_patterns("__pycache__", "*.pyc", *CONTEXT_EXCLUDED)
            shutil.copytree(origin, target, ignore=excluded)
        else:
            target = target / origin.name if destination.endswith("/") else target
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, target)
    return into


def install(stage_dir: Path) -> Path:
    """The stage's ``pip install .`` (no dependencies: the virtual environment has them), into
    a site folder beside it; returns that folder."""
    site = stage_dir.with_name(stage_dir.name + "-site")
    result = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "install", "--quiet", "--no-deps"),
            *("--no-build-isolation", "--target", str(site), str(stage_dir)),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return site


def stage_env(site: Path, **settings: str) -> dict[str, str]:
    """An environment in which only the stage's installed project and third-party packages
    import."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("VLMC_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ISOLATION), str(site)])
    env["OMP_NUM_THREADS"] = "1"
    env["ADMIN_API_KEY"] = ADMIN_KEY
    env.update(settings)
    return env


def vlmc(arguments: list[str]) -> list[str]:
    """The image's ``vlmc`` console script, as this interpreter runs it."""
    assert arguments[0] == "vlmc", arguments
    return [sys.executable, "-m", "service.cli", *arguments[1:]]


def run_migration_step(stage: str, env: dict[str, str], cwd: Path) -> None:
    """Compose's ``init`` service, verbatim, from ``cwd`` (an empty directory)."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    init = compose["services"]["init"]
    assert init["build"]["target"] == stage
    result = subprocess.run(
        vlmc(init["command"]), cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr


@contextmanager
def api_from_stage(stage_dir: Path, env: dict[str, str], log: Path) -> Iterator[httpx.Client]:
    """The api stage's ``CMD`` (uvicorn on the app factory), on a free port."""
    [command] = [i for i in dockerfile_stages()["api"][1] if i.startswith("CMD")]
    arguments = yaml.safe_load(command.removeprefix("CMD").strip())
    port = free_port()
    arguments[arguments.index("--port") + 1] = str(port)
    arguments[arguments.index("--host") + 1] = "127.0.0.1"
    assert arguments[0] == "uvicorn"
    with open(log, "ab") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", *arguments],
            cwd=stage_dir,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    client = httpx.Client(
        base_url=f"http://127.0.0.1:{port}",
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        timeout=60,
    )

    def ready() -> bool:
        try:
            return client.get("/readyz").status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(ready, 120, f"the api stage on port {port} ({log})", processes=(process,))
        yield client
    finally:
        client.close()
        stop_process(process)


def importable(stage_dir: Path, env: dict[str, str]) -> set[str]:
    """The project's packages a process started in ``stage_dir`` can import."""
    code = (
        "import importlib.util\n"
        f"for name in {PROJECT_PACKAGES!r}:\n"
        "    if importlib.util.find_spec(name) is not None: print(name)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=stage_dir, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


@pytest.fixture(scope="module")
def shots() -> Shots:
    return fashion_shots()


@pytest.fixture(scope="module")
def api_stage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return assemble("api", tmp_path_factory.mktemp("stages") / "api")


@pytest.fixture(scope="module")
def api_site(api_stage: Path) -> Path:
    return install(api_stage)


def test_the_api_stage_holds_no_training_or_demo_code(
    api_stage: Path, api_site: Path, tmp_path: Path
) -> None:
    env = stage_env(api_site, VLMC_DATA_DIR=str(tmp_path))
    assert importable(api_stage, env) == {"catalogue", "service", "migrations"}
    assert importable(tmp_path, env) == {"catalogue", "service", "migrations"}


def test_the_api_stage_migrates_serves_and_validates_corrections(
    api_stage: Path, api_site: Path, tmp_path: Path, tiny_model_dir: Path, shots: Shots
) -> None:
    env = stage_env(
        api_site,
        VLMC_DATA_DIR=str(tmp_path / "data"),
        VLMC_DATABASE_URL=f"sqlite:///{tmp_path / 'vlmc.db'}",
        VLMC_MODEL_ROOTS=str(tiny_model_dir.parent),
        VLMC_READYZ_REQUIRES_WORKER="false",
    )
    run_migration_step("api", env, cwd=tmp_path)
    with api_from_stage(api_stage, env, tmp_path / "api.log") as api:
        # The explorers and the dashboard come with their assets (the ui-assets stage).
        for page in ("/docs", "/redoc", "/ui/", "/ui/vendor/chart.js/dist/chart.umd.min.js"):
            assert api.get(page).status_code == 200, page
        model_id = register(api, "tiny", tiny_model_dir)
        # A correction the catalogue accepts is queued (no worker here: it stays queued) ...
        job_id = submit(api, model_id, shots.train[:4], {"max_steps": 2, "batch_size": 4})
        job: dict[str, Any] = api.get(f"/v1/jobs/{job_id}").json()
        assert job["status"] == "queued" and job["method"] == "lorsu"
        assert job["hyperparameters"]["top_k_heads"] >= 1  # resolved by the catalogue
        # ... and one it refuses says why, with the catalogue's codes.
        bad = {"examples": [{"image_base64": png_base64(shots.train[0][0]), "label": "x"}]}
        for extra, code in (
            ({"hyperparameters": {"rank": 0}}, "invalid_hyperparameter"),
            ({"method": "no-such-method"}, "unknown_method"),
        ):
            response = api.post(f"/v1/models/{model_id}/corrections", json={**bad, **extra})
            assert response.status_code == 422, response.text
            assert response.json()["error"]["code"] == code


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.slow
def test_the_worker_stage_runs_a_job_on_postgres_and_redis(
    api_stage: Path, api_site: Path, tmp_path: Path, tiny_model_dir: Path, shots: Shots
) -> None:
    worker_stage = assemble("worker", tmp_path / "worker")
    worker_site = install(worker_stage)
    empty = tmp_path / "empty"
    empty.mkdir()
    name, url = create_postgres_database()
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    settings = {
        "VLMC_DATA_DIR": str(tmp_path / "data"),
        "VLMC_DATABASE_URL": url,
        "VLMC_BROKER_URL": redis.url,
        "VLMC_MODEL_ROOTS": str(tiny_model_dir.parent),
        "VLMC_OUTBOX_INTERVAL_S": "0.5",
        "VLMC_WORKER_HEARTBEAT_INTERVAL_S": "0.5",
    }
    worker_env = stage_env(worker_site, **settings)
    assert importable(empty, worker_env) == {"catalogue", "service", "workers", "migrations"}
    try:
        api_env = stage_env(api_site, **settings)
        run_migration_step("api", api_env, cwd=empty)
        [command] = [i for i in dockerfile_stages()["worker"][1] if i.startswith("CMD")]
        with open(tmp_path / "worker.log", "ab") as log:
            worker = subprocess.Popen(
                vlmc(yaml.safe_load(command.removeprefix("CMD").strip())),
                cwd=empty,
                env=worker_env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            with api_from_stage(api_stage, api_env, tmp_path / "api.log") as api:
                model_id = register(api, "tiny", tiny_model_dir)
                job_id = submit(api, model_id, shots.train, {"max_steps": 3, "batch_size": 4})
                job = wait_for_status(
                    api, job_id, {"succeeded", "failed"}, timeout=300, processes=(worker,)
                )
                assert job["status"] == "succeeded", job
                versions = api.get(f"/v1/models/{model_id}/versions").json()
                assert sorted(v["number"] for v in versions) == [1, 2]
        finally:
            stop_process(worker)
    finally:
        redis.stop()
        drop_postgres_database(name)
