"""Browser fixtures: the API (uvicorn, real HTTP) with a ``vlmc worker`` child process on the
embedded default, and Debian's Chromium driven by Playwright (no downloaded browser).

- ``dashboard``: the server, its admin client and the tiny model registered with two versions
  made through a real correction (module-scoped: the journeys share it; each test that changes
  state says so and leaves what the next ones rely on);
- ``page``: a fresh browser page; any page error or console error fails the test;
- ``screenshot(page, name)``: a full-page screenshot into ``VLMC_SCREENSHOTS_DIR`` when that is
  set (the README's pictures: ``VLMC_SCREENSHOTS_DIR=docs/screenshots .venv/bin/pytest tests/ui``).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_KEY, embedded_settings, to_png
from tests.faults.cluster import wait_for_status
from tests.live_server import serve_app
from tests.worker_process import worker_process

CHROMIUM = os.environ.get("VLMC_TEST_CHROMIUM", "/usr/bin/chromium")
# As root, without a sandbox; no background calls to hosts this machine cannot reach.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
FINISHED = {"succeeded", "failed", "cancelled"}


@dataclass
class Dashboard:
    """The running service, its admin API client and the tiny model's ids."""

    url: str
    api: httpx.Client
    model: dict[str, Any]
    folder: Path  # a folder per label of real images, for the correction journeys
    worker: subprocess.Popen[bytes]
    worker_log: Path

    def wait_for_job(self, job_id: str, timeout: float = 180) -> dict[str, Any]:
        try:
            return wait_for_status(self.api, job_id, FINISHED, timeout, (self.worker,))
        except AssertionError as failure:
            log = self.worker_log.read_text(errors="replace")[-3000:]
            raise AssertionError(f"{failure}\n--- worker log ---\n{log}") from failure

    def versions(self) -> list[dict[str, Any]]:
        response = self.api.get(f"/v1/models/{self.model['id']}/versions")
        return sorted(response.json(), key=lambda version: version["number"])

    def key_with(self, *scopes: str, model_ids: list[str] | None = None) -> str:
        body = {"name": "-".join(scopes), "scopes": list(scopes), "model_ids": model_ids}
        response = self.api.post("/v1/api-keys", json=body)
        assert response.status_code == 201, response.text
        return str(response.json()["key"])


def write_label_folders(root: Path, fashion: Any, classes: tuple[int, ...]) -> Path:
    """Real Fashion-MNIST images as ``root/<label>/<n>.png`` (the dashboard's folder upload)."""
    for index, label in enumerate(fashion.labels):
        if label in classes:
            folder = root / fashion.class_names[label]
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{index}.png").write_bytes(to_png(fashion.images[index]))
    return root


@pytest.fixture(scope="module")
def dashboard(
    tmp_path_factory: pytest.TempPathFactory, api_model_dir: Path, fashion: Any
) -> Iterator[Dashboard]:
    base = tmp_path_factory.mktemp("dashboard")
    settings = embedded_settings(
        base / "data", tmp_path_factory.getbasetemp(), worker_heartbeat_timeout_s=30
    )
    folder = write_label_folders(base / "shots", fashion, (0, 1, 5, 7))
    with (
        serve_app(settings) as server,
        worker_process(settings, base / "worker.log") as worker,
        httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=60
        ) as api,
    ):
        response = api.post(
            "/v1/models",
            json={"name": "tiny", "base_path": str(api_model_dir), "activation_policy": "always"},
        )
        assert response.status_code == 201, response.text
        model = response.json()
        # A control set of classes the corrections never teach: versions get a CC and
        # per-set accuracies to show.
        controls = [i for i, label in enumerate(fashion.labels) if label in (2, 3, 4, 8)]
        registered = api.post(
            f"/v1/models/{model['id']}/eval-sets",
            files=[
                ("images", (f"{i}.png", to_png(fashion.images[i]), "image/png")) for i in controls
            ],
            data={
                "name": "fashion-control",
                "kind": "control",
                "labels": [fashion.class_names[fashion.labels[i]] for i in controls],
            },
        )
        assert registered.status_code == 201, registered.text
        yield Dashboard(server.url, api, model, folder, worker, base / "worker.log")


def chromium_present() -> None:
    assert Path(CHROMIUM).exists(), (
        f"{CHROMIUM} is missing: `make install` installs Debian's chromium "
        "(scripts/install-system-deps.sh); VLMC_TEST_CHROMIUM names another binary"
    )


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    chromium_present()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def allowed_console_errors() -> list[str]:
    """Fragments of console errors a test expects (``allow_console_errors``)."""
    return []


@pytest.fixture
def allow_console_errors(allowed_console_errors: list[str]) -> Callable[[str], None]:
    return allowed_console_errors.append


@pytest.fixture
def page(browser: Any, allowed_console_errors: list[str]) -> Iterator[Any]:
    """A fresh page; a page error, or a console error the test did not expect, fails it."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems: list[str] = []

    def on_console(message: Any) -> None:
        if message.type == "error" and not any(f in message.text for f in allowed_console_errors):
            problems.append(f"console {message.type}: {message.text}")

    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("console", on_console)
    page.set_default_timeout(20_000)
    yield page
    context.close()
    assert not problems, "\n".join(problems)


@pytest.fixture
def screenshot() -> Callable[[Any, str], None]:
    folder = os.environ.get("VLMC_SCREENSHOTS_DIR")

    def take(page: Any, name: str) -> None:
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)

    return take


def sign_in(page: Any, url: str, key: str) -> None:
    page.goto(f"{url}/ui/")
    page.fill("input[name=api-key]", key)
    page.click("#sign-in button")
    page.wait_for_selector("#models")
