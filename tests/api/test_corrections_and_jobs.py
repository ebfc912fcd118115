"""A correction becomes a queued job with echoed settings, a held-out split, events, a broker
message (after commit) and a cooperative cancel."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from fastapi.testclient import TestClient
from kombu import Connection, Queue

from service.jobs.constants import UPDATE_QUEUE, UPDATE_TASK_NAME
from service.runtime import Runtime
from tests.api.conftest import error_code
from tests.conftest import to_png


def _submit(client: TestClient, model_id: str, fashion: Any, **data: Any) -> dict[str, Any]:
    files = [
        ("images", (f"{i}.png", to_png(image), "image/png"))
        for i, image in enumerate(fashion.images[:12])
    ]
    labels = [fashion.class_names[label] for label in fashion.labels[:12]]
    response = client.post(
        f"/v1/models/{model_id}/corrections", files=files, data={"labels": labels, **data}
    )
    assert response.status_code == 202, response.text
    return dict(response.json())


def _broker_messages(runtime: Runtime, timeout: float = 10.0) -> list[dict[str, Any]]:
    """Drain the updates queue of the embedded broker (what a worker would receive)."""
    messages: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    with Connection(runtime.settings.broker_url) as connection:
        queue = connection.SimpleQueue(Queue(UPDATE_QUEUE, routing_key=UPDATE_QUEUE))
        while time.monotonic() < deadline:
            try:
                message = queue.get(timeout=0.5)
            except queue.Empty:
                if messages:
                    break
                continue
            messages.append({"headers": message.headers, "body": message.decode()})
            message.ack()
        queue.close()
    return messages


def test_correction_queues_a_job_and_a_broker_message(
    client: TestClient, model: dict[str, Any], fashion: Any
) -> None:
    accepted = _submit(
        client, model["id"], fashion, method="lora", hyperparameters='{"rank": 4}', seed="7"
    )
    assert accepted["examples"] == 12 and accepted["method"] == "lora"
    # Default fraction 0.2: one image of every class with at least two images is held out
    # (round(0.2 * n) is 1 for n <= 7); single images stay in training.
    counts = Counter(fashion.labels[:12])
    assert accepted["held_out"] == sum(1 for n in counts.values() if n >= 2) > 0
    job = client.get(f"/v1/jobs/{accepted['job_id']}").json()
    assert job["status"] == "queued" and job["seed"] == 7
    assert job["hyperparameters"]["rank"] == 4 and job["hyperparameters"]["learning_rate"] > 0
    # Resolved at submission: what the update will use, never a null default.
    assert job["hyperparameters"]["alpha"] == 4.0
    progress = job["progress"]
    assert (progress["phase"], progress["step"], progress["total"]) == ("queued", 0, 0)
    assert progress["eta_s"] is None and job["error"] is None
    assert progress["elapsed_s"] >= progress["phase_elapsed_s"] >= 0
    events = client.get(f"/v1/jobs/{accepted['job_id']}/events").json()
    assert [e["type"] for e in events["events"]] == ["status"]

    messages = _broker_messages(client.app.state.runtime)  # type: ignore[attr-defined]
    assert [(m["headers"]["task"], m["body"][0]) for m in messages] == [
        (UPDATE_TASK_NAME, [accepted["job_id"]])
    ]


def test_explicit_eval_examples_are_held_out(
    client: TestClient, model: dict[str, Any], fashion: Any
) -> None:
    files = [
        ("images", (f"{i}.png", to_png(image), "image/png"))
        for i, image in enumerate(fashion.images[:4])
    ] + [("eval_images", ("e.png", to_png(fashion.images[4]), "image/png"))]
    labels = [fashion.class_names[label] for label in fashion.labels[:4]]
    response = client.post(
        f"/v1/models/{model['id']}/corrections",
        files=files,
        data={"labels": labels, "eval_labels": [fashion.class_names[fashion.labels[4]]]},
    )
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert (accepted["examples"], accepted["trained"], accepted["held_out"]) == (5, 4, 1)
    assert accepted["ti_source"] == "eval_examples" and "all 4 examples train" in accepted["note"]


def test_what_trains_and_what_measures_ti_is_stated(
    client: TestClient, model: dict[str, Any], fashion: Any
) -> None:
    # Nothing else to measure TI on: a share of the examples is held out, and the answer says so.
    held = _submit(client, model["id"], fashion)
    assert held["ti_source"] == "held_out" and held["trained"] == 12 - held["held_out"]
    job = client.get(f"/v1/jobs/{held['job_id']}").json()
    assert job["training_split"] == {
        "examples": 12,
        "trained": held["trained"],
        "held_out": held["held_out"],
        "ti_source": "held_out",
    }
    assert f"{held['held_out']} of the 12 examples" in held["note"]
    # Once the model has a target eval set, every example trains and TI comes from the set.
    files = [
        ("images", (f"{i}.png", to_png(fashion.images[20 + i]), "image/png")) for i in range(4)
    ]
    labels = [fashion.class_names[label] for label in fashion.labels[20:24]]
    created = client.post(
        f"/v1/models/{model['id']}/eval-sets",
        files=files,
        data={"name": "fix-these", "kind": "target", "labels": labels},
    )
    assert created.status_code == 201, created.text
    everything = _submit(client, model["id"], fashion, seed="1")
    assert (everything["trained"], everything["held_out"]) == (12, 0)
    assert everything["ti_source"] == "target_sets"
    assert "target eval sets" in everything["note"]
    # An explicit share still wins.
    explicit = _submit(client, model["id"], fashion, seed="2", held_out_fraction="0.5")
    assert explicit["ti_source"] == "held_out" and explicit["held_out"] > 0


def test_cancel_a_queued_job(client: TestClient, model: dict[str, Any], fashion: Any) -> None:
    accepted = _submit(client, model["id"], fashion)
    cancelled = client.post(f"/v1/jobs/{accepted['job_id']}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled" and cancelled.json()["finished_at"]
    again = client.post(f"/v1/jobs/{accepted['job_id']}/cancel")
    assert again.status_code == 409 and error_code(again) == "job_finished"
    events = client.get(f"/v1/jobs/{accepted['job_id']}/events").json()["events"]
    assert [e["data"].get("status") for e in events] == ["queued", None, "cancelled"]
    assert events[1]["type"] == "phase" and events[1]["data"]["phase"] == "done"
    following = client.get(
        f"/v1/jobs/{accepted['job_id']}/events", params={"after": events[0]["id"]}
    ).json()
    assert [e["id"] for e in following["events"]] == [events[1]["id"], events[2]["id"]]


def test_eval_sets_register_and_list(
    client: TestClient, model: dict[str, Any], fashion: Any
) -> None:
    files = [
        ("images", (f"{i}.png", to_png(image), "image/png"))
        for i, image in enumerate(fashion.images[:6])
    ]
    labels = [fashion.class_names[label] for label in fashion.labels[:6]]
    url = f"/v1/models/{model['id']}/eval-sets"
    created = client.post(
        url, files=files, data={"name": "keep", "kind": "control", "labels": labels}
    )
    assert created.status_code == 201, created.text
    assert created.json()["size"] == 6 and created.json()["labels"] == sorted(set(labels))
    duplicate = client.post(url, files=files, data={"name": "keep", "labels": labels})
    assert duplicate.status_code == 409 and error_code(duplicate) == "eval_set_name_taken"
    listed = client.get(url).json()
    assert [(s["name"], s["kind"], s["size"]) for s in listed] == [("keep", "control", 6)]
    assert listed[0]["max_drop"] is None
    strict = client.post(
        url,
        files=files,
        data={"name": "strict", "kind": "control", "labels": labels, "max_drop": "0.5"},
    )
    assert strict.status_code == 201 and strict.json()["max_drop"] == 0.5
    target_limit = client.post(
        url, files=files, data={"name": "t", "kind": "target", "labels": labels, "max_drop": "1"}
    )
    assert target_limit.status_code == 422
    assert error_code(target_limit) == "max_drop_needs_control"


def test_eval_sets_may_hold_questions_whose_right_answers_are_the_labels(
    client: TestClient, model: dict[str, Any], fashion: Any
) -> None:
    import base64

    url = f"/v1/models/{model['id']}/eval-sets"
    shoe = {"sandal", "sneaker", "ankle boot"}
    names = [fashion.class_names[label] for label in fashion.labels[:6]]
    files = [
        ("images", (f"{i}.png", to_png(image), "image/png"))
        for i, image in enumerate(fashion.images[:6])
    ]
    answers = ["yes" if name in shoe else "no" for name in names]
    questions = ["Is it a shoe?"] * 3 + [""] * 3  # empty: no question (a labelled item)
    labels = answers[:3] + names[3:]
    form = client.post(
        url, files=files, data={"name": "qa", "labels": labels, "questions": questions}
    )
    assert form.status_code == 201, form.text
    assert (form.json()["size"], form.json()["question_examples"]) == (6, 3)
    examples = [
        {
            "image_base64": base64.b64encode(to_png(image)).decode(),
            "label": answer,
            "question": "Is it a shoe?",
        }
        for image, answer in zip(fashion.images[:6], answers, strict=True)
    ]
    json_form = client.post(url, json={"name": "qa-json", "examples": examples})
    assert json_form.status_code == 201, json_form.text
    assert json_form.json()["question_examples"] == 6
    mismatch = client.post(
        url, files=files, data={"name": "bad", "labels": labels, "questions": questions[:2]}
    )
    assert mismatch.status_code == 422 and error_code(mismatch) == "questions_mismatch"
    assert [s["name"] for s in client.get(url).json()] == ["qa", "qa-json"]


def test_a_correction_names_the_target_sets_it_fixes(
    client: TestClient, model: dict[str, Any], fashion: Any
) -> None:
    url = f"/v1/models/{model['id']}/eval-sets"
    files = [("images", (f"{i}.png", to_png(fashion.images[i]), "image/png")) for i in range(4)]
    labels = [fashion.class_names[label] for label in fashion.labels[:4]]
    for name, kind in (("mine", "target"), ("theirs", "target"), ("guard", "control")):
        created = client.post(url, files=files, data={"name": name, "kind": kind, "labels": labels})
        assert created.status_code == 201, created.text
    named = _submit(client, model["id"], fashion, target_sets=["mine", "mine"])
    assert (named["ti_source"], named["target_sets"]) == ("target_sets", ["mine"])
    assert "target eval sets it names (mine)" in named["note"]
    for target_sets, code in ((["nope"], "unknown_target_set"), (["guard"], "not_a_target_set")):
        refused = client.post(
            f"/v1/models/{model['id']}/corrections",
            files=files,
            data={"labels": labels, "target_sets": target_sets},
        )
        assert refused.status_code == 422, refused.text
        assert error_code(refused) == code
