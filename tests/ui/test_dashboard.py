"""The dashboard's journeys in real Chromium against the real service (uvicorn + a ``vlmc
worker`` process, embedded default, real Fashion-MNIST images): sign in, models, versions
with their charts, a correction from the browser followed live to its version, two versions
compared on the user's image, roll back with a reason, keys and storage; what a key may not
do is not offered, and a refused action shows the API's error and changes nothing."""

from __future__ import annotations

import base64
import tarfile
from pathlib import Path
from typing import Any

from tests.conftest import ADMIN_KEY
from tests.ui.conftest import Dashboard, sign_in

LABELS = ["t-shirt", "trouser", "sandal", "sneaker"]


def corrected(dashboard: Dashboard) -> list[dict[str, Any]]:
    """The model's versions, with a corrected v2 made through the API if no test made one."""
    versions = dashboard.versions()
    if len(versions) == 1:
        files = [
            ("images", (path.name, path.read_bytes(), "image/png"))
            for path in sorted(dashboard.folder.glob("*/*.png"))
        ]
        labels = [path.parent.name for path in sorted(dashboard.folder.glob("*/*.png"))]
        accepted = dashboard.api.post(
            f"/v1/models/{dashboard.model['id']}/corrections",
            files=files,
            data={"labels": labels, "hyperparameters": '{"epochs": 2}', "seed": "1"},
        )
        assert accepted.status_code == 202, accepted.text
        assert dashboard.wait_for_job(accepted.json()["job_id"])["status"] == "succeeded"
        versions = dashboard.versions()
    return versions


def chart_points(page: Any, canvas_id: str) -> list[list[float | None]]:
    """The data Chart.js drew on a canvas (one list per dataset)."""
    return list(
        page.evaluate(
            "id => Chart.getChart(document.getElementById(id)).data.datasets.map(d => d.data)",
            canvas_id,
        )
    )


def open_model(page: Any, dashboard: Dashboard) -> None:
    page.click(f"#models a:text-is('{dashboard.model['name']}')")
    page.wait_for_selector("#versions")


def test_a_correction_from_the_browser_is_followed_live_to_its_version(
    dashboard: Dashboard, page: Any, screenshot: Any
) -> None:
    sign_in(page, dashboard.url, ADMIN_KEY)
    screenshot(page, "models")
    open_model(page, dashboard)
    page.click("text=New correction")
    # A folder per label: each image takes its folder's name as its label.
    page.set_input_files("#pick-folder", str(dashboard.folder))
    shots = sorted(dashboard.folder.glob("*/*.png"))
    page.wait_for_selector(f"#example-count:text-is('{len(shots)} example(s)')")
    shown = page.eval_on_selector_all("#correction input[name=label]", "l => l.map(i => i.value)")
    assert sorted(shown) == sorted(path.parent.name for path in shots)
    page.select_option("select[name=method]", "lorsu")
    page.fill("textarea[name=hyperparameters]", '{"epochs": 2}')
    page.fill("input[name=seed]", "1")
    screenshot(page, "correction")
    page.click("#submit-correction")

    # The job page follows the job's events live until it ends.
    page.wait_for_selector("#job-summary")
    job_id = page.url.rsplit("/", 1)[1]
    page.wait_for_selector("#job-status:text-is('succeeded')", timeout=180_000)
    job = dashboard.api.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "succeeded" and job["seed"] == 1
    model = dashboard.api.get(f"/v1/models/{job['model_id']}").json()
    assert page.locator("#job-model").inner_text() == model["name"]
    page.wait_for_selector("#job-result:text-is('version 2')")
    events = dashboard.api.get(f"/v1/jobs/{job_id}/events").json()["events"]
    page.wait_for_function(f"document.querySelectorAll('#events .event').length >= {len(events)}")
    assert page.locator("#events .event").count() == len(events)
    assert page.locator("#job-step").inner_text() == f"{job['progress']['total']} of " + str(
        job["progress"]["total"]
    )
    screenshot(page, "job")

    # The new version is on the model page, with its metrics in the table and the charts.
    page.click("#job-result")
    page.wait_for_selector("#versions tr[data-version='2']")
    version = dashboard.versions()[-1]
    assert version["job_id"] == job_id and version["number"] == 2
    row = page.locator("#versions tr[data-version='2']")
    assert row.locator("td.ti").inner_text() == f"{version['evaluation']['ti']:+.1f}"
    ti, cc = chart_points(page, "metrics-chart")[:2]
    assert ti[1] == version["evaluation"]["ti"] and cc[1] == version["evaluation"]["cc"]
    # Per set: the base's accuracy (measured before the update) and the new version's.
    [control] = version["evaluation"]["sets"]
    assert chart_points(page, "sets-chart") == [
        [control["accuracy_before"], control["accuracy_after"]]
    ]
    shown = row.locator("td.sets").inner_text()
    assert shown == (
        f"{control['set_name']} (control): {control['accuracy_before']:.1f} → "
        f"{control['accuracy_after']:.1f}"
    )
    screenshot(page, "model")


def test_two_versions_compared_on_the_users_image(
    dashboard: Dashboard, page: Any, screenshot: Any
) -> None:
    versions = corrected(dashboard)
    image = sorted(dashboard.folder.glob("sandal/*.png"))[0]
    sign_in(page, dashboard.url, ADMIN_KEY)
    open_model(page, dashboard)
    page.click("text=Compare versions")
    page.set_input_files("input[name=image]", str(image))
    page.fill("textarea[name=labels]", "\n".join(LABELS))
    page.click("#compare button.primary")
    page.wait_for_selector("#comparison .card[data-version='2'] canvas")
    for version in (versions[0], versions[-1]):
        expected = dashboard.api.post(
            f"/v1/models/{dashboard.model['id']}/classify",
            files=[("images", (image.name, image.read_bytes(), "image/png"))],
            data={"labels": LABELS, "version_id": version["id"]},
        ).json()["predictions"][0]
        card = page.locator(f"#comparison .card[data-version='{version['number']}']")
        label, probability = card.locator(".answer").inner_text().rsplit(" ", 1)
        assert label == expected["label"]
        assert probability == f"{expected['probabilities'][label]:.4f}"
        assert "null" not in card.inner_text()
    screenshot(page, "compare")


def test_roll_back_with_a_reason_is_recorded_and_serves_the_old_version(
    dashboard: Dashboard, page: Any
) -> None:
    versions = corrected(dashboard)
    assert versions[-1]["active"]
    sign_in(page, dashboard.url, ADMIN_KEY)
    open_model(page, dashboard)
    page.click("#versions button.move[data-version='1']")
    page.fill("dialog input[name=reason]", "v2 confuses sandals")
    page.click("dialog button.primary")
    page.wait_for_selector("#deployments tbody tr:first-child td:text-is('v2 confuses sandals')")
    model = dashboard.api.get(f"/v1/models/{dashboard.model['id']}").json()
    assert model["active_version_number"] == 1
    latest = dashboard.api.get(f"/v1/models/{dashboard.model['id']}/deployments").json()[-1]
    assert (latest["action"], latest["reason"]) == ("rollback", "v2 confuses sandals")
    # And forward again, from the same page.
    page.click(f"#versions button.move[data-version='{versions[-1]['number']}']")
    page.fill("dialog input[name=reason]", "fixed upstream")
    page.click("dialog button.primary")
    page.wait_for_selector("#deployments tbody tr:first-child td:text-is('fixed upstream')")
    model = dashboard.api.get(f"/v1/models/{dashboard.model['id']}").json()
    assert model["active_version_number"] == versions[-1]["number"]


def test_what_a_key_may_not_do_is_not_offered(dashboard: Dashboard, page: Any) -> None:
    corrected(dashboard)
    other = dashboard.api.post(
        "/v1/models", json={"name": "other", "base_path": dashboard.model["base_path"]}
    )
    assert other.status_code in (201, 409), other.text
    inference = dashboard.key_with("inference")
    sign_in(page, dashboard.url, inference)
    assert page.locator("#nav a", has_text="Keys and storage").count() == 0
    open_model(page, dashboard)
    assert page.locator("text=Compare versions").count() == 1
    assert page.locator("text=New correction").count() == 0
    assert page.locator("#versions button.move").count() == 0

    # A key restricted to one model sees only that model.
    page.click("#sign-out")
    restricted = dashboard.key_with("corrections", model_ids=[dashboard.model["id"]])
    sign_in(page, dashboard.url, restricted)
    assert page.locator("#models tbody tr").all_inner_texts()[0].startswith("tiny")
    assert page.locator("#models tbody tr").count() == 1
    open_model(page, dashboard)
    assert page.locator("text=New correction").count() == 1
    assert page.locator("#versions button.move").count() == 0


def test_a_refused_action_shows_the_api_error_and_changes_nothing(
    dashboard: Dashboard, page: Any, allow_console_errors: Any
) -> None:
    allow_console_errors("status of 403")
    corrected(dashboard)
    before = dashboard.api.get(f"/v1/models/{dashboard.model['id']}/deployments").json()
    inference = dashboard.key_with("inference")
    sign_in(page, dashboard.url, inference)
    # The page offers what the key's record says; pretend it said admin (a stale record, a
    # hand-edited one): the API still decides.
    page.evaluate(
        "() => { const who = JSON.parse(sessionStorage.getItem('vlmc-api-key-record'));"
        " who.scopes = ['admin']; sessionStorage.setItem('vlmc-api-key-record',"
        " JSON.stringify(who)); }"
    )
    open_model(page, dashboard)
    page.click("#versions button.move[data-version='1']")
    page.fill("dialog input[name=reason]", "should not happen")
    page.click("dialog button.primary")
    page.wait_for_selector("#notice:not([hidden])")
    assert page.locator("#notice").inner_text().startswith("403 insufficient_scope")
    after = dashboard.api.get(f"/v1/models/{dashboard.model['id']}/deployments").json()
    assert after == before


def test_keys_and_storage_for_admins(dashboard: Dashboard, page: Any, tmp_path: Path) -> None:
    sign_in(page, dashboard.url, ADMIN_KEY)
    page.click("#nav a:text-is('Keys and storage')")
    page.wait_for_selector("#keys")
    page.fill("#create-key input[name=name]", "ci-bot")
    page.check("#create-key input[value=corrections]")
    page.click("#create-key button.primary")
    page.wait_for_selector("#created-key code.key")
    key = page.locator("#created-key code.key").inner_text()
    me = dashboard.api.get("/v1/api-keys/me", headers={"Authorization": f"Bearer {key}"}).json()
    assert me["name"] == "ci-bot" and sorted(me["scopes"]) == ["corrections", "inference"]
    page.click("#keys tr[data-key='ci-bot'] button.revoke")
    page.fill("dialog input[name=reason]", "yes")
    page.click("dialog button.primary")
    page.wait_for_selector("#keys tr[data-key='ci-bot'] .badge:text-is('revoked')")
    refused = dashboard.api.get("/v1/api-keys/me", headers={"Authorization": f"Bearer {key}"})
    assert refused.status_code == 401
    usage = dashboard.api.get("/v1/storage").json()
    assert page.locator("#storage").inner_text().startswith(f"{usage['blobs']} blobs")


def mistakes(dashboard: Dashboard, count: int) -> list[tuple[Path, str, str]]:
    """(image, served label, right label) of ``count`` images the active version gets wrong,
    each of a different right label."""
    found: dict[str, tuple[Path, str, str]] = {}
    for path in sorted(dashboard.folder.glob("*/*.png")):
        if path.parent.name in found:
            continue
        served = dashboard.api.post(
            f"/v1/models/{dashboard.model['id']}/classify",
            files=[("images", (path.name, path.read_bytes(), "image/png"))],
            data={"labels": LABELS},
        ).json()["predictions"][0]["label"]
        if served != path.parent.name:
            found[path.parent.name] = (path, served, path.parent.name)
        if len(found) == count:
            return list(found.values())
    raise AssertionError(f"the active version gets fewer than {count} labels wrong")


def test_flag_wrong_answers_and_correct_from_the_inbox(
    dashboard: Dashboard, page: Any, screenshot: Any
) -> None:
    corrected(dashboard)
    sign_in(page, dashboard.url, ADMIN_KEY)
    open_model(page, dashboard)
    if page.locator("#capture-toggle").inner_text() == "Turn on":
        page.click("#capture-toggle")
    page.wait_for_selector("#capture-toggle:text-is('Turn off')")
    assert dashboard.api.get(f"/v1/models/{dashboard.model['id']}").json()["feedback_capture"]

    flagged = mistakes(dashboard, 2)
    for image, served, right in flagged:
        page.goto(f"{dashboard.url}/ui/#/models/{dashboard.model['id']}/compare")
        page.set_input_files("input[name=image]", str(image))
        page.fill("textarea[name=labels]", "\n".join(LABELS))
        page.click("#compare button.primary")
        active = dashboard.versions()[-1]["number"]
        card = page.locator(f"#comparison .card[data-version='{active}']")
        card.locator("button.flag").wait_for()
        assert card.locator(".answer").inner_text().startswith(served)
        card.locator("select[name=right]").select_option(right)
        card.locator("button.flag").click()
        card.locator(".flagged").wait_for()

    page.goto(f"{dashboard.url}/ui/#/models/{dashboard.model['id']}/inbox")
    page.wait_for_selector("#inbox tbody tr[data-item]")
    rows = page.locator("#inbox tbody tr[data-item]")
    assert rows.count() == 2
    assert sorted(rows.locator("td.right").all_inner_texts()) == sorted(r for _, _, r in flagged)
    # Each item shows the image that was asked about (fetched with the key).
    page.wait_for_function(
        "[...document.querySelectorAll('#inbox img')].every(i => i.complete && i.naturalWidth > 0)"
    )
    screenshot(page, "inbox")
    page.click("#correct-from-inbox")
    page.wait_for_selector("#job-summary")
    job_id = page.url.rsplit("/", 1)[1]
    page.wait_for_selector("#job-status:text-is('succeeded')", timeout=180_000)
    items = dashboard.api.get(f"/v1/models/{dashboard.model['id']}/inbox?status=used").json()
    job = dashboard.api.get(f"/v1/jobs/{job_id}").json()
    assert {item["correction_id"] for item in items} == {job["correction_id"]}
    assert len(items) == 2


def test_export_a_version_from_its_row(dashboard: Dashboard, page: Any, tmp_path: Path) -> None:
    versions = corrected(dashboard)
    sign_in(page, dashboard.url, ADMIN_KEY)
    open_model(page, dashboard)
    with page.expect_download() as download:
        page.click(f"#versions button.export[data-version='{versions[1]['number']}']")
    archive = tmp_path / download.value.suggested_filename
    download.value.save_as(archive)
    assert archive.name == f"tiny-v{versions[1]['number']}.tar"
    with tarfile.open(archive) as tar:
        names = {Path(name).name for name in tar.getnames()}
    assert {"config.json", "model.safetensors", "README.md"} <= names


def test_an_admin_registers_and_deletes_an_evaluation_set(dashboard: Dashboard, page: Any) -> None:
    sign_in(page, dashboard.url, ADMIN_KEY)
    open_model(page, dashboard)
    page.click("#register-eval-set summary")
    page.fill("#eval-set input[name=name]", "browser-control")
    page.fill("#eval-set input[name=max_drop]", "5")
    page.set_input_files("#eval-set-folder", str(dashboard.folder))
    page.click("#eval-set button.primary")
    page.wait_for_selector("#eval-sets tr[data-set='browser-control']")
    sets = dashboard.api.get(f"/v1/models/{dashboard.model['id']}/eval-sets").json()
    registered = next(s for s in sets if s["name"] == "browser-control")
    shots = sorted(dashboard.folder.glob("*/*.png"))
    assert registered["kind"] == "control" and registered["max_drop"] == 5
    assert registered["size"] == len(shots)
    assert sorted(registered["labels"]) == sorted({path.parent.name for path in shots})
    page.click("#eval-sets tr[data-set='browser-control'] button.remove-set")
    page.fill("dialog input[name=reason]", "a trial")
    page.click("dialog button.primary")
    page.wait_for_selector("#eval-sets tr[data-set='browser-control']", state="detached")
    names = [
        s["name"] for s in dashboard.api.get(f"/v1/models/{dashboard.model['id']}/eval-sets").json()
    ]
    assert "browser-control" not in names


def test_an_admin_deletes_a_model_and_a_busy_one_is_refused(
    dashboard: Dashboard, page: Any, allow_console_errors: Any
) -> None:
    allow_console_errors("status of 409")
    doomed = dashboard.api.post(
        "/v1/models", json={"name": "doomed", "base_path": dashboard.model["base_path"]}
    )
    assert doomed.status_code == 201, doomed.text
    # A key restricted to it keeps it: 409, shown, nothing removed.
    key = dashboard.api.post(
        "/v1/api-keys",
        json={"name": "doomed-app", "scopes": ["inference"], "model_ids": [doomed.json()["id"]]},
    ).json()
    sign_in(page, dashboard.url, ADMIN_KEY)
    page.click("#models a:text-is('doomed')")
    page.wait_for_selector("#versions")
    page.click("#delete-model")
    page.fill("dialog input[name=reason]", "doomed")
    page.click("dialog button.primary")
    page.wait_for_selector("#notice:not([hidden])")
    assert page.locator("#notice").inner_text().startswith("409 model_in_use_by_key")
    assert dashboard.api.get(f"/v1/models/{doomed.json()['id']}").status_code == 200

    assert dashboard.api.delete(f"/v1/api-keys/{key['id']}").status_code == 200
    page.click("#delete-model")
    page.fill("dialog input[name=reason]", "doomed")
    page.click("dialog button.primary")
    page.wait_for_selector("#models")
    assert page.locator("#models a:text-is('doomed')").count() == 0
    assert dashboard.api.get(f"/v1/models/{doomed.json()['id']}").status_code == 404


def test_a_vlms_versions_compared_by_their_answers(
    dashboard: Dashboard, page: Any, api_vlm_dir: Path
) -> None:
    vlm = dashboard.api.post(
        "/v1/models",
        json={
            "name": "tiny-vlm",
            "base_path": str(api_vlm_dir),
            "pair_path": dashboard.model["base_path"],
        },
    )
    assert vlm.status_code == 201, vlm.text
    image = sorted(dashboard.folder.glob("sneaker/*.png"))[0]
    sign_in(page, dashboard.url, ADMIN_KEY)
    page.goto(f"{dashboard.url}/ui/#/models/{vlm.json()['id']}/compare")
    page.set_input_files("input[name=image]", str(image))
    page.fill("input[name=question]", "What is in the picture?")
    page.click("#compare button.primary")
    page.wait_for_selector("#comparison .card:nth-child(2) .answer")
    url = "data:image/png;base64," + base64.b64encode(image.read_bytes()).decode()
    expected = dashboard.api.post(
        "/v1/chat/completions",
        json={
            "model": "tiny-vlm",
            "version_id": 1,
            "max_tokens": 32,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is in the picture?"},
                        {"type": "image_url", "image_url": {"url": url}},
                    ],
                }
            ],
        },
    ).json()["choices"][0]["message"]["content"]
    answers = page.locator("#comparison .card .answer").all_inner_texts()
    assert answers == [expected, expected]  # one version: both sides answer alike


def test_a_refused_correction_shows_the_apis_code_and_a_running_job_is_cancelled(
    dashboard: Dashboard, page: Any, allow_console_errors: Any
) -> None:
    allow_console_errors("status of 422")
    jobs_before = dashboard.api.get(f"/v1/models/{dashboard.model['id']}/jobs").json()
    sign_in(page, dashboard.url, ADMIN_KEY)
    page.goto(f"{dashboard.url}/ui/#/models/{dashboard.model['id']}/correct")
    page.set_input_files("#pick-folder", str(dashboard.folder))
    page.wait_for_selector("#example-count:not(:text-is('0 example(s)'))")
    # The hyperparameters are validated by the API, as for any client: refused, nothing queued.
    page.fill("textarea[name=hyperparameters]", '{"rank": 0}')
    page.click("#submit-correction")
    page.wait_for_selector("#notice:not([hidden])")
    assert page.locator("#notice").inner_text().startswith("422 invalid_hyperparameter")
    assert dashboard.api.get(f"/v1/models/{dashboard.model['id']}/jobs").json() == jobs_before

    # A long job, cancelled from its page while it runs.
    page.fill("textarea[name=hyperparameters]", '{"epochs": 400, "max_steps": 4000}')
    page.click("#submit-correction")
    page.wait_for_selector("#job-status:text-is('running')", timeout=120_000)
    page.click("#cancel-job")
    page.wait_for_selector("#job-status:text-is('cancelled')", timeout=120_000)
    job_id = page.url.rsplit("/", 1)[1]
    job = dashboard.api.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "cancelled" and job["result_version_id"] is None
    assert page.locator("#cancel-job").is_hidden()
