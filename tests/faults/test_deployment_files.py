"""docker-compose.yml and the Dockerfile say what the production topology needs.

No container engine runs here, so these read the files: every ``VLMC_*`` variable the compose
file sets is a real setting (a typo would be silently ignored at run time), the worker
reserves a GPU and runs one job at a time, every long-running service has a health check,
one one-shot service migrates before anything else starts, and both image targets exist with
the right torch build. When a compose CLI is installed (``docker compose`` or the standalone
``docker-compose``), its ``config`` must accept the file.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from service.settings import Settings
from workers.pipeline.settings import WorkerSettings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "docker-compose.yml").read_text()))


def _setting_names() -> set[str]:
    service = {f"VLMC_{name.upper()}" for name in Settings.model_fields}
    worker = {f"VLMC_WORKER_{name.upper()}" for name in WorkerSettings.model_fields}
    return service | worker | {"ADMIN_API_KEY"}


def test_every_environment_variable_is_a_real_setting(compose: dict[str, Any]) -> None:
    known = _setting_names()
    for name, service in compose["services"].items():
        for variable in service.get("environment", {}):
            if variable.startswith("VLMC_") or variable == "ADMIN_API_KEY":
                assert variable in known, f"{name}: {variable} is not a setting"


def test_the_worker_reserves_a_gpu_and_runs_one_job_at_a_time(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    [device] = worker["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
    assert worker["command"][-2:] == ["--concurrency", "1"]
    assert worker["environment"]["VLMC_DEVICE"] == "cuda"
    assert worker["environment"]["VLMC_BROKER_URL"].startswith("redis://")
    visibility = int(worker["environment"]["VLMC_WORKER_VISIBILITY_TIMEOUT_S"])
    assert visibility > int(worker["environment"]["VLMC_WORKER_LEASE_SECONDS"])


def test_services_are_health_checked_and_start_in_order(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("postgres", "redis", "api", "worker"):
        assert services[name]["healthcheck"]["test"], name
    for name in ("api", "worker"):
        depends = services[name]["depends_on"]
        assert depends["init"]["condition"] == "service_completed_successfully"
        assert (
            depends["postgres"]["condition"] == depends["redis"]["condition"] == ("service_healthy")
        )
        assert "vlmc-data:/data" in services[name]["volumes"]  # one shared blob store
    # The prestart step only migrates; the stand-in is seeded only in its own profile.
    assert services["init"]["command"] == ["vlmc", "migrate"]
    assert services["init"]["build"]["target"] == "api"
    standin = services["standin"]
    assert standin["profiles"] == ["standin"]
    assert standin["build"]["target"] == "standin" and "vlmc-data:/data" in standin["volumes"]
    assert standin["depends_on"]["init"]["condition"] == "service_completed_successfully"


def test_the_dockerfile_has_a_cpu_api_target_and_a_cuda_worker_target() -> None:
    text = (ROOT / "Dockerfile").read_text()
    stages = dict(re.findall(r"^FROM \S+ AS (\w+)$(.*?)(?=^FROM |\Z)", text, re.M | re.S))
    assert {"base", "api", "worker", "standin"} <= set(stages)
    assert "download.pytorch.org/whl/cpu" in stages["api"]
    assert "whl/cu" in stages["worker"] and "workers.pipeline.healthcheck" in stages["worker"]
    # Demo material only in the stand-in image (what each stage copies is started for real in
    # test_docker_stages.py).
    assert "COPY standin" not in stages["worker"] and "COPY standin" in stages["standin"]
    assert "cairo" not in stages["worker"] and "standin.basemodel" in stages["standin"]


def _compose_command() -> list[str] | None:
    """``docker compose`` (v2 plugin) when installed, else the standalone ``docker-compose``."""
    if shutil.which("docker") is not None:
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True)
        if probe.returncode == 0:
            return ["docker", "compose"]
    standalone = shutil.which("docker-compose")
    return [standalone] if standalone is not None else None


@pytest.mark.skipif(_compose_command() is None, reason="no docker compose CLI is installed")
def test_docker_compose_accepts_the_file() -> None:
    command = _compose_command()
    assert command is not None
    env = {"PATH": "/usr/bin:/bin:/usr/local/bin", "POSTGRES_PASSWORD": "x", "ADMIN_API_KEY": "y"}
    result = subprocess.run([*command, "config"], cwd=ROOT, env=env, capture_output=True)
    assert result.returncode == 0, result.stderr.decode()
    rendered = yaml.safe_load(result.stdout)
    devices = rendered["services"]["worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    assert set(rendered["services"]) >= {"api", "worker", "postgres", "redis"}


def _hadolint() -> str | None:
    """hadolint from the dev extra (installed next to this interpreter), or on PATH."""
    beside = Path(sys.executable).parent / "hadolint"
    return str(beside) if beside.is_file() else shutil.which("hadolint")


@pytest.mark.skipif(_hadolint() is None, reason="hadolint is not installed")
def test_hadolint_accepts_the_dockerfile() -> None:
    hadolint = _hadolint()
    assert hadolint is not None
    result = subprocess.run(
        [hadolint, "--failure-threshold", "info", str(ROOT / "Dockerfile")], capture_output=True
    )
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
