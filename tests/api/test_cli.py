"""The client commands of ``vlmc`` over real HTTP, against the app under uvicorn, as the README
runs them: tables and summaries by default, the API's JSON with ``--json``, and the API's
error code on stderr with exit status 1."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

from bench.load.processes import free_port
from service.cli import app
from service.cli.client import ServiceClient
from service.cli.commands import image_folder
from tests.api.versions_helpers import train_version
from tests.conftest import ADMIN_KEY
from tests.live_server import LiveServer
from workers.pipeline.context import build_context
from workers.pipeline.runner import process_job
from workers.pipeline.settings import WorkerSettings

# How the deployment history names the seeded admin key.
ADMIN_ACTOR = "key:admin (ADMIN_API_KEY)"


@pytest.fixture
def served(live_server: LiveServer, api_model_dir: Path) -> tuple[LiveServer, dict[str, Any]]:
    response = httpx.post(
        f"{live_server.url}/v1/models",
        json={"name": "tiny", "base_path": str(api_model_dir)},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
    )
    assert response.status_code == 201, response.text
    return live_server, response.json()


def _vlmc(
    server: LiveServer,
    *args: str,
    key: str = ADMIN_KEY,
    columns: int = 200,
    typed: str | None = None,
) -> Result:
    """``vlmc ARGS`` with the service's URL and ``key`` in the environment (as the README
    exports them) on a terminal ``columns`` wide; ``typed``: what the user types."""
    env = {"VLMC_URL": server.url, "VLMC_API_KEY": key, "COLUMNS": str(columns)}
    return CliRunner().invoke(app, list(args), env=env, input=typed)


def _api(server: LiveServer, path: str) -> Any:
    response = httpx.get(f"{server.url}{path}", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert response.status_code == 200, response.text
    return response.json()


def _write_folder(root: Path, fashion: Any) -> Path:
    for index, (image, label) in enumerate(
        zip(fashion.images[:8], fashion.labels[:8], strict=True)
    ):
        folder = root / fashion.class_names[label]
        folder.mkdir(parents=True, exist_ok=True)
        image.save(folder / f"{index}.png")
    (root / "notes.txt").write_text("not an image folder entry")
    return root


def _table_rows(output: str) -> list[list[str]]:
    """The cells of each body row of a rich table (rows drawn with ``│``)."""
    return [
        [cell.strip() for cell in line.strip().strip("│").split("│")]
        for line in output.splitlines()
        if line.strip().startswith("│")
    ]


def test_image_folder_layout(tmp_path: Path, fashion: Any) -> None:
    pairs = image_folder(_write_folder(tmp_path / "batch", fashion))
    assert len(pairs) == 8
    assert {label for _path, label in pairs} == {
        fashion.class_names[label] for label in fashion.labels[:8]
    }


def test_correct_submits_the_folder(
    served: tuple[LiveServer, dict[str, Any]], fashion: Any, tmp_path: Path
) -> None:
    server, model = served
    folder = _write_folder(tmp_path / "batch", fashion)
    result = _vlmc(
        server, "correct", str(folder), "--no-follow", "--method", "spu", "--seed", "3", "--json"
    )
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    [job] = _api(server, f"/v1/models/{model['id']}/jobs")
    assert job["method"] == "spu" and job["status"] == "queued" and job["seed"] == 3
    assert printed["correction"]["job_id"] == job["id"]
    assert printed["correction"]["examples"] == 8
    assert printed["job"] is None and printed["version"] is None  # not followed

    not_json = _vlmc(server, "correct", str(folder), "--no-follow", "--hyperparameters", "[1]")
    assert not_json.exit_code == 2 and "must be a JSON object" in not_json.output

    # --target-set names the target sets the correction fixes (the service checks them).
    unknown = _vlmc(server, "correct", str(folder), "--no-follow", "--target-set", "nope")
    assert unknown.exit_code != 0 and "unknown_target_set" in unknown.output


def test_versions_table_keeps_whole_columns_on_a_narrow_terminal(
    served: tuple[LiveServer, dict[str, Any]], fashion: Any
) -> None:
    server, model = served
    labels = [fashion.class_names[label] for label in fashion.labels]
    version = train_version(server.runtime, model["id"], fashion.images, labels)

    table = _vlmc(server, "versions", "--model", "tiny", columns=60)
    assert table.exit_code == 0, table.output
    rows = _table_rows(table.stdout)
    listed = _api(server, f"/v1/models/{model['id']}/versions")
    by_number = {row[0]: row for row in rows}
    assert set(by_number) == {"1", "2"}
    for expected in listed:
        row = by_number[str(expected["number"])]
        # Whole ids and timestamps, however narrow the terminal: nothing is cut or wrapped.
        assert row[1] == expected["id"]
        assert row[8] == expected["created_at"][:19].replace("T", " ")
    assert by_number["2"][2:4] == ["ready", "full-ft"]
    assert by_number["2"][7] == "1"  # parent: version 1
    assert by_number["1"][3] == "base" and by_number["1"][-1] == "*"  # the active one
    assert max(len(line) for line in table.stdout.splitlines()) > 60

    as_json = _vlmc(server, "versions", "--json")
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout) == listed
    assert version.id in {row["id"] for row in json.loads(as_json.stdout)}


def test_activate_and_rollback_print_the_move_as_a_table(
    served: tuple[LiveServer, dict[str, Any]], fashion: Any
) -> None:
    server, model = served
    labels = [fashion.class_names[label] for label in fashion.labels]
    train_version(server.runtime, model["id"], fashion.images, labels)

    activated = _vlmc(server, "activate", "latest", "--reason", "reviewed by hand")
    assert activated.exit_code == 0, activated.output
    [row] = _table_rows(activated.stdout)
    assert row[1:] == ["activate", "1", "2", ADMIN_ACTOR, "reviewed by hand"]
    assert "activate of tiny" in activated.stdout
    again = _vlmc(server, "activate", "2")
    assert again.exit_code == 0 and again.stdout == "version 2 of tiny is already active\n"

    rolled = _vlmc(server, "rollback", "1", "--reason", "cli test")
    assert rolled.exit_code == 0, rolled.output
    [row] = _table_rows(rolled.stdout)
    assert row[1:] == ["rollback", "2", "1", ADMIN_ACTOR, "cli test"]
    assert _api(server, f"/v1/models/{model['id']}")["active_version_number"] == 1

    refused = _vlmc(server, "rollback", "1")
    assert refused.exit_code == 1 and refused.stdout == ""
    assert refused.stderr.startswith("error (409) version_already_active: ")

    as_json = _vlmc(server, "rollback", "2", "--reason", "forward again", "--json")
    assert as_json.exit_code == 0, as_json.output
    moved = json.loads(as_json.stdout)
    assert (moved["action"], moved["reason"]) == ("rollback", "forward again")
    assert moved == _api(server, f"/v1/models/{model['id']}/deployments")[-1]


def test_keys_create_list_revoke(served: tuple[LiveServer, dict[str, Any]]) -> None:
    server, model = served
    created = _vlmc(server, "keys", "create", "kiosk", "-s", "inference", "-m", "tiny")
    assert created.exit_code == 0, created.output
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("vlmc_")
    listed = _vlmc(server, "keys", "list")
    assert listed.exit_code == 0, listed.output
    [kiosk] = [row for row in _table_rows(listed.stdout) if row[1] == "kiosk"]
    assert kiosk[3:5] == ["inference", model["id"]] and key not in listed.stdout
    as_json = _vlmc(server, "keys", "list", "--json")
    assert {row["name"]: row["model_ids"] for row in json.loads(as_json.stdout)}["kiosk"] == [
        model["id"]
    ]
    # The new key works, for its model only, and cannot manage keys.
    assert _vlmc(server, "versions", key=key).exit_code == 0
    denied = _vlmc(server, "keys", "list", key=key)
    assert denied.exit_code == 1 and "error (403) insufficient_scope: " in denied.stderr
    key_id = created.stdout.split()[1]
    assert kiosk[0] == key_id
    revoked = _vlmc(server, "keys", "revoke", key_id)
    assert revoked.exit_code == 0, revoked.output
    assert revoked.stdout.startswith(f"key {key_id} (kiosk) revoked at ")
    after = _vlmc(server, "versions", key=key)
    assert after.exit_code == 1 and "error (401) invalid_api_key: " in after.stderr
    admin_id = next(row["id"] for row in _api(server, "/v1/api-keys") if "admin" in row["scopes"])
    last = _vlmc(server, "keys", "revoke", admin_id)
    assert last.exit_code == 1 and "last_admin_key" in last.stderr


def test_walk_through_commands(
    served: tuple[LiveServer, dict[str, Any]], fashion: Any, tmp_path: Path
) -> None:
    server, model = served
    folder = _write_folder(tmp_path / "batch", fashion)
    image = next(folder.glob("*/*.png"))
    labels = sorted({fashion.class_names[label] for label in fashion.labels[:8]})

    classified = _vlmc(server, "classify", str(image), *[f"-l{label}" for label in labels])
    assert classified.exit_code == 0, classified.output
    assert "tiny version 1" in classified.stdout
    [row] = _table_rows(classified.stdout)
    assert row[0] == str(image) and row[1] in labels and 0 < float(row[2]) <= 1
    answer = json.loads(
        _vlmc(server, "classify", str(image), *[f"-l{label}" for label in labels], "--json").stdout
    )
    assert answer["version_number"] == 1
    assert answer["predictions"][0]["label"] == row[1]

    submitted = _vlmc(server, "correct", str(folder), "--no-follow")
    assert submitted.exit_code == 0, submitted.output
    [job] = _api(server, f"/v1/models/{model['id']}/jobs")
    assert submitted.stdout.startswith(f"correction {job['correction_id']}: 8 examples, job ")
    listed = _vlmc(server, "jobs")
    assert listed.exit_code == 0, listed.output
    [listed_row] = _table_rows(listed.stdout)
    assert listed_row[:3] == [job["id"], "queued", "lorsu"]
    one = _vlmc(server, "jobs", job["id"])
    assert one.exit_code == 0, one.output
    fields = {row[0]: row[1] for row in _table_rows(one.stdout)}
    assert (fields["status"], fields["method"], fields["progress"]) == ("queued", "lorsu", "0/0")
    assert fields["phase"].startswith("queued for ") and fields["elapsed"].endswith("s")
    printed = json.loads(_vlmc(server, "jobs", job["id"], "--json").stdout)
    # The same job, read a moment later: only the seconds it has waited moved on.
    assert printed["progress"]["elapsed_s"] >= job["progress"]["elapsed_s"]
    timeless = {"elapsed_s", "phase_elapsed_s"}
    assert {**printed, "progress": None} == {**job, "progress": None}
    assert {k: v for k, v in printed["progress"].items() if k not in timeless} == {
        k: v for k, v in job["progress"].items() if k not in timeless
    }
    missing = _vlmc(server, "jobs", "no-such-job")
    assert missing.exit_code == 1 and "error (404) job_not_found: " in missing.stderr

    # Version 2 as the worker would write it, held back by the gate (not active).
    all_labels = [fashion.class_names[label] for label in fashion.labels]
    train_version(server.runtime, model["id"], fashion.images, all_labels)
    activated = _vlmc(server, "activate", "latest", "--reason", "reviewed by hand")
    assert activated.exit_code == 0, activated.output
    pinned = _vlmc(server, "classify", str(image), "-l", "a", "-l", "b", "--version", "1")
    assert pinned.exit_code == 0 and "tiny version 1" in pinned.stdout, pinned.output
    rolled = _vlmc(server, "rollback", "1", "--reason", "regression on cats")
    assert rolled.exit_code == 0, rolled.output
    deployments = _api(server, f"/v1/models/{model['id']}/deployments")
    assert [d["action"] for d in deployments] == ["initial", "activate", "rollback"]
    history = _vlmc(server, "deployments")
    assert history.exit_code == 0, history.output
    assert [row[1:4] for row in _table_rows(history.stdout)] == [
        ["initial", "", "1"],
        ["activate", "1", "2"],
        ["rollback", "2", "1"],
    ]
    assert _table_rows(history.stdout)[-1][-1] == "regression on cats"
    # On a narrow terminal free text wraps between words; timestamps stay whole.
    narrow = _vlmc(server, "deployments", columns=60)
    assert narrow.exit_code == 0, narrow.output
    for deployment in deployments:
        assert deployment["created_at"][:19].replace("T", " ") in narrow.stdout
    assert {"regression", "on", "cats"} <= set(narrow.stdout.split())
    assert json.loads(_vlmc(server, "deployments", "--json").stdout) == deployments


def test_ask_streams_the_answer_of_the_generative_model(
    served: tuple[LiveServer, dict[str, Any]],
    api_vlm_dir: Path,
    api_model_dir: Path,
    fashion: Any,
    tmp_path: Path,
) -> None:
    from tests.api.test_chat_completions import ask

    server, model = served
    registered = httpx.post(
        f"{server.url}/v1/models",
        json={"name": "tiny-vlm", "base_path": str(api_vlm_dir), "pair_path": str(api_model_dir)},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
    )
    assert registered.status_code == 201, registered.text
    image = tmp_path / "shoe.png"
    fashion.images[0].convert("RGB").save(image)
    asked = _vlmc(server, "ask", str(image), "What is in the picture?", "--max-tokens", "8")
    assert asked.exit_code == 0, asked.output
    completion = httpx.post(
        f"{server.url}/v1/chat/completions",
        json=ask(fashion.images[0].convert("RGB")),
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
    ).json()
    [reference] = [choice["message"]["content"] for choice in completion["choices"]]
    assert asked.stdout == f"{reference}\n(tiny-vlm version 1)\n"
    as_json = _vlmc(
        server, "ask", str(image), "What is in the picture?", "--max-tokens", "8", "--json"
    )
    assert as_json.exit_code == 0, as_json.output
    printed = json.loads(as_json.stdout)
    assert printed["choices"][0]["message"]["content"] == reference
    assert printed["version_number"] == 1 and printed["model"] == "tiny-vlm"
    dual_only = _vlmc(server, "ask", str(image), "What?", "--model", model["name"])
    assert dual_only.exit_code == 1 and "error (422) not_generative: " in dual_only.stderr


def test_url_and_key_as_global_options(served: tuple[LiveServer, dict[str, Any]]) -> None:
    server, model = served
    result = CliRunner().invoke(
        app, ["--url", server.url, "--api-key", ADMIN_KEY, "versions", "--json"], env={}
    )
    assert result.exit_code == 0, result.output
    assert [row["model_id"] for row in json.loads(result.stdout)] == [model["id"]]
    # ADMIN_API_KEY, the server's own variable, is read too.
    admin = CliRunner().invoke(
        app, ["--url", server.url, "storage", "usage"], env={"ADMIN_API_KEY": ADMIN_KEY}
    )
    assert admin.exit_code == 0, admin.output
    usage = _api(server, "/v1/storage")
    assert admin.stdout == f"{usage['blobs']} blobs, {usage['bytes']} bytes\n"


def test_no_key_and_no_server_are_said_plainly() -> None:
    keyless = CliRunner().invoke(app, ["versions"], env={"VLMC_API_KEY": "", "ADMIN_API_KEY": ""})
    assert keyless.exit_code == 2 and "give --api-key or set VLMC_API_KEY" in keyless.output
    url = f"http://127.0.0.1:{free_port()}"
    nobody = CliRunner().invoke(app, ["--url", url, "--api-key", "k", "versions"])
    assert nobody.exit_code == 1 and nobody.stdout == ""
    assert nobody.stderr.startswith(f"error: no answer from {url}/: ")


def _run_when_submitted(server: LiveServer, model_id: str) -> threading.Thread:
    """A thread that runs the model's first job in this process once it is submitted (the
    pipeline, without a broker hop), while the command follows it."""

    def run() -> None:
        deadline = time.monotonic() + 60
        while not (jobs := _api(server, f"/v1/models/{model_id}/jobs")):
            assert time.monotonic() < deadline, "no job was submitted"
            time.sleep(0.05)
        context = build_context(
            server.runtime.settings, WorkerSettings(progress_interval_s=0), worker_id="test:cli"
        )
        try:
            process_job(context, jobs[0]["id"])
        finally:
            context.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_correct_follows_the_job_through_its_event_stream(
    served: tuple[LiveServer, dict[str, Any]], fashion: Any, tmp_path: Path
) -> None:
    server, model = served
    folder = _write_folder(tmp_path / "batch", fashion)
    worker = _run_when_submitted(server, model["id"])
    try:
        result = _vlmc(server, "correct", str(folder), "--hyperparameters", '{"epochs": 2}')
    finally:
        worker.join(timeout=120)
    assert result.exit_code == 0, result.output
    [job] = _api(server, f"/v1/models/{model['id']}/jobs")
    assert job["status"] == "succeeded" and job["progress"]["phase"] == "done"
    assert "version 2 (ready" in result.stdout
    # The progress bar's last state: status and phase, every training step, nothing left.
    total = job["progress"]["total"]
    assert "succeeded done" in result.stderr and f"{total}/{total}" in result.stderr


def test_a_dropped_event_stream_resumes_after_the_last_event(
    served: tuple[LiveServer, dict[str, Any]], fashion: Any, tmp_path: Path
) -> None:
    server, _model = served
    folder = _write_folder(tmp_path / "batch", fashion)
    submitted = _vlmc(server, "correct", str(folder), "--no-follow", "--json")
    job_id = json.loads(submitted.stdout)["correction"]["job_id"]
    cancelled = httpx.post(
        f"{server.url}/v1/jobs/{job_id}/cancel", headers={"Authorization": f"Bearer {ADMIN_KEY}"}
    )
    assert cancelled.status_code == 200, cancelled.text
    events = _api(server, f"/v1/jobs/{job_id}/events")["events"]

    class DropsFirstStream(httpx.HTTPTransport):
        """The first event stream breaks after its first event (a dropped connection)."""

        def __init__(self) -> None:
            super().__init__()
            self.requests: list[httpx.Request] = []

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            response = super().handle_request(request)
            self.requests.append(request)
            if request.url.path.endswith("/stream") and len(self.requests) == 1:
                body = response.read()
                first = body[: body.index(b"\n\n") + 2]
                return httpx.Response(200, stream=_Breaking(first), request=request)
            return response

    transport = DropsFirstStream()
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, transport=transport
    ) as http:
        followed = list(ServiceClient(http).job_events(job_id, retry_wait_s=0))
    # Every event once, in order: the second request asked for those after the first.
    assert [event.id for event in followed] == [event["id"] for event in events]
    assert [r.headers["Last-Event-ID"] for r in transport.requests] == ["0", str(events[0]["id"])]


class _Breaking(httpx.SyncByteStream):
    def __init__(self, first: bytes) -> None:
        self.first = first

    def __iter__(self) -> Iterator[bytes]:
        yield self.first
        raise httpx.ReadError("connection dropped")


def test_models_delete_asks_for_confirmation(
    served: tuple[LiveServer, dict[str, Any]], api_model_dir: Path
) -> None:
    server, model = served
    for typed in ("n\n", None):  # declined, or nobody to ask (no input)
        kept = _vlmc(server, "models", "delete", "tiny", typed=typed)
        assert kept.exit_code == 1 and "Aborted" in kept.output, kept.output
        assert "Delete model tiny" in kept.output and "1 version(s)" in kept.output
        assert _api(server, f"/v1/models/{model['id']}")["name"] == "tiny"

    created = _vlmc(server, "keys", "create", "partner", "-s", "inference", "-m", "tiny")
    assert created.exit_code == 0, created.output
    refused = _vlmc(server, "models", "delete", "tiny", "--yes")
    assert refused.exit_code == 1 and "error (409) model_in_use_by_key: " in refused.stderr
    [key] = [row for row in _api(server, "/v1/api-keys") if row["name"] == "partner"]
    assert _vlmc(server, "keys", "revoke", key["id"]).exit_code == 0

    not_admin = _vlmc(server, "keys", "create", "reader", "-s", "inference", "--json")
    denied = _vlmc(
        server, "models", "delete", "tiny", "-y", key=json.loads(not_admin.stdout)["key"]
    )
    assert denied.exit_code == 1 and "error (403) insufficient_scope: " in denied.stderr

    confirmed = _vlmc(server, "models", "delete", model["id"], typed="y\n")
    assert confirmed.exit_code == 0, confirmed.output
    assert confirmed.stdout.endswith(
        "model tiny deleted: 1 versions, 1 deployments, 0 jobs, 0 answers, 0 corrections, "
        "0 eval sets; "
        "blobs: 0 deleted (0 bytes)\n"
    )
    again = _vlmc(server, "models", "delete", "tiny", "--yes")
    assert again.exit_code == 2 and "no model named or with id 'tiny'" in again.output

    other = httpx.post(
        f"{server.url}/v1/models",
        json={"name": "other", "base_path": str(api_model_dir)},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
    )
    as_json = _vlmc(server, "models", "delete", "other", "--yes", "--json")
    assert as_json.exit_code == 0, as_json.output
    printed = json.loads(as_json.stdout)
    assert (printed["id"], printed["name"], printed["versions"]) == (other.json()["id"], "other", 1)
    assert printed["blobs"]["deleted_blobs"] == 0
    assert _api(server, "/v1/models") == []


def test_versions_by_number_or_id_are_sent_as_they_are(
    served: tuple[LiveServer, dict[str, Any]], fashion: Any
) -> None:
    """The commands send a version's number or id to the API, which takes either; an unknown
    one is the API's answer."""
    server, model = served
    labels = [fashion.class_names[label] for label in fashion.labels]
    version = train_version(server.runtime, model["id"], fashion.images, labels)
    by_id = _vlmc(server, "activate", version.id, "--json")
    assert by_id.exit_code == 0, by_id.output
    assert json.loads(by_id.stdout)["to_version_id"] == version.id
    already = _vlmc(server, "activate", version.id)
    assert already.stdout == "version 2 of tiny is already active\n"
    unknown = _vlmc(server, "rollback", "7")
    assert unknown.exit_code == 1 and "error (404) version_not_found: " in unknown.stderr
    zero = _vlmc(server, "archive", "0")
    assert zero.exit_code == 1 and "error (422) invalid_version_number: " in zero.stderr
    archived = _vlmc(server, "rollback", "1")
    assert archived.exit_code == 0, archived.output
    assert _vlmc(server, "archive", "2").stdout == "version 2 of tiny archived\n"
