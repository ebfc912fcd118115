"""The mistakes inbox over HTTP: answer ids on every answer, per-model feedback capture,
feedback on a served answer, the inbox (list, image, dismiss, one correction of its items),
scopes, retention through the storage collection, and chat completions."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from service.corrections import repository as corrections_repository
from service.db.base import utcnow
from service.db.session import session_scope
from service.db.tables import Answer
from service.runtime import Runtime
from service.settings import Settings
from tests.api.conftest import error_code
from tests.api.test_chat_completions import ask, sse_events
from tests.conftest import to_png

LABELS = ["coat", "bag", "sneaker"]


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    # No grace period: a collection deletes every blob nothing refers to at once.
    return make_settings(blob_gc_grace_s=0)


def _runtime(client: TestClient) -> Runtime:
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    return runtime


def _answers_kept(client: TestClient) -> int:
    with session_scope(_runtime(client).session_factory) as session:
        return int(session.scalar(select(func.count()).select_from(Answer)) or 0)


def _classify(
    client: TestClient, model_id: str, images: list[bytes], key: str | None = None
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    response = client.post(
        f"/v1/models/{model_id}/classify",
        files=[("images", (f"{i}.png", data, "image/png")) for i, data in enumerate(images)],
        data={"labels": LABELS},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def _flag(client: TestClient, answer_id: str, key: str | None = None, **body: Any) -> Any:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return client.post(f"/v1/answers/{answer_id}/feedback", json=body, headers=headers)


def _capture(client: TestClient, model_id: str, enabled: bool = True, **extra: Any) -> None:
    response = client.put(
        f"/v1/models/{model_id}/feedback-capture", json={"enabled": enabled, **extra}
    )
    assert response.status_code == 200, response.text
    assert response.json()["enabled"] is enabled


def _pngs(fashion: Any, count: int) -> list[bytes]:
    return [to_png(image) for image in fashion.images[:count]]


def test_without_capture_answers_carry_ids_and_feedback_keeps_nothing(
    client: TestClient, model: dict[str, Any], fashion: Any
) -> None:
    assert model["feedback_capture"] is False and model["feedback_retention_hours"] == 168
    blobs_before = client.get("/v1/storage").json()["blobs"]
    answered = _classify(client, model["id"], _pngs(fashion, 2))
    ids = [prediction["answer_id"] for prediction in answered["predictions"]]
    assert len(set(ids)) == 2 and all(i.startswith(f"ans-{model['id']}_") for i in ids)

    refused = _flag(client, ids[0], label="bag")
    assert refused.status_code == 409 and error_code(refused) == "feedback_capture_off"
    assert _answers_kept(client) == 0
    assert client.get("/v1/storage").json()["blobs"] == blobs_before
    unknown = _flag(client, "ans-nothing", label="bag")
    assert unknown.status_code == 404 and error_code(unknown) == "answer_not_found"
    # Turned on later: an answer served before was not kept.
    _capture(client, model["id"])
    missing = _flag(client, ids[0], label="bag")
    assert missing.status_code == 404 and error_code(missing) == "answer_not_found"


def test_flagged_answers_become_one_correction(
    client: TestClient, model: dict[str, Any], fashion: Any, key_with: Callable[..., str]
) -> None:
    model_id = model["id"]
    bad = client.put(
        f"/v1/models/{model_id}/feedback-capture", json={"enabled": True, "retention_hours": 0}
    )
    assert bad.status_code == 422
    _capture(client, model_id, retention_hours=24)
    assert client.get(f"/v1/models/{model_id}").json()["feedback_capture"] is True
    inference, corrections = key_with("inference"), key_with("corrections")
    images = _pngs(fashion, 3)
    predictions = _classify(client, model_id, images, key=inference)["predictions"]
    assert _answers_kept(client) == 3

    # The right labels: a candidate other than the one served, distinct between the two.
    first, second = predictions[0], predictions[1]
    right_first = next(label for label in LABELS if label != first["label"])
    right_second = next(label for label in LABELS if label not in (second["label"], right_first))
    for body, code in (
        ({"label": first["label"]}, "answer_was_right"),
        ({"label": "dress"}, "label_not_candidate"),
        ({"label": "   "}, "empty_label"),
        ({"answer": "a coat"}, "label_required"),
    ):
        refused = _flag(client, first["answer_id"], key=inference, **body)
        assert refused.status_code == 422 and error_code(refused) == code, body
    flagged = _flag(client, first["answer_id"], key=inference, label=right_first)
    assert flagged.status_code == 201, flagged.text
    item = flagged.json()
    assert item["status"] == "open" and item["served"] == first["label"]
    assert item["right_answer"] == right_first and item["labels"] == LABELS
    assert item["version_number"] == 1 and item["kind"] == "classify"
    again = _flag(client, first["answer_id"], key=inference, label=right_first)
    assert again.status_code == 409 and error_code(again) == "already_flagged"
    assert _flag(client, second["answer_id"], key=inference, label=right_second).status_code == 201
    assert _flag(client, predictions[2]["answer_id"], label=right_first).status_code == 201

    as_corrections = {"Authorization": f"Bearer {corrections}"}
    forbidden = client.get(
        f"/v1/models/{model_id}/inbox", headers={"Authorization": f"Bearer {inference}"}
    )
    assert forbidden.status_code == 403
    inbox = client.get(f"/v1/models/{model_id}/inbox", headers=as_corrections).json()
    # Newest flag first.
    assert [i["id"] for i in inbox] == [p["answer_id"] for p in reversed(predictions)]
    image = client.get(inbox[-1]["image_url"], headers=as_corrections)
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert image.content == images[0]

    dismissed = client.post(
        f"/v1/models/{model_id}/inbox/{predictions[2]['answer_id']}/dismiss",
        headers=as_corrections,
    )
    assert dismissed.status_code == 200 and dismissed.json()["status"] == "dismissed"
    closed = client.post(
        f"/v1/models/{model_id}/inbox/corrections",
        json={"item_ids": [predictions[2]["answer_id"]]},
        headers=as_corrections,
    )
    assert closed.status_code == 409 and error_code(closed) == "inbox_item_closed"

    body = {"item_ids": [first["answer_id"], second["answer_id"]], "method": "lora"}
    not_allowed = client.post(
        f"/v1/models/{model_id}/inbox/corrections",
        json=body,
        headers={"Authorization": f"Bearer {inference}"},
    )
    assert not_allowed.status_code == 403
    accepted = client.post(
        f"/v1/models/{model_id}/inbox/corrections", json=body, headers=as_corrections
    )
    assert accepted.status_code == 202, accepted.text
    correction = accepted.json()
    assert correction["examples"] == 2 and correction["trained"] == 2
    assert correction["method"] == "lora" and correction["status"] == "queued"
    job = client.get(f"/v1/jobs/{correction['job_id']}").json()
    assert job["status"] == "queued" and job["method"] == "lora"
    with session_scope(_runtime(client).session_factory) as session:
        examples = corrections_repository.examples(session, correction["correction_id"])
        kept = {a.id: a.image_sha256 for a in session.scalars(select(Answer))}
    assert [(e.label, e.image_sha256) for e in examples] == [
        (right_first, kept[first["answer_id"]]),
        (right_second, kept[second["answer_id"]]),
    ]
    used = client.get(
        f"/v1/models/{model_id}/inbox", params={"status": "used"}, headers=as_corrections
    ).json()
    assert {i["id"] for i in used} == {first["answer_id"], second["answer_id"]}
    assert {i["correction_id"] for i in used} == {correction["correction_id"]}
    reused = client.post(
        f"/v1/models/{model_id}/inbox/corrections", json=body, headers=as_corrections
    )
    assert reused.status_code == 409 and error_code(reused) == "inbox_item_closed"
    used_dismissal = client.post(
        f"/v1/models/{model_id}/inbox/{first['answer_id']}/dismiss", headers=as_corrections
    )
    assert used_dismissal.status_code == 409 and error_code(used_dismissal) == "inbox_item_used"


def test_a_restricted_key_sees_only_its_models_answers(
    client: TestClient, model: dict[str, Any], fashion: Any
) -> None:
    other = client.post(
        "/v1/models", json={"name": "other", "base_path": model["base_path"]}
    ).json()
    _capture(client, other["id"])
    answer_id = _classify(client, other["id"], _pngs(fashion, 1))["predictions"][0]["answer_id"]
    created = client.post(
        "/v1/api-keys",
        json={"name": "mine", "scopes": ["inference", "corrections"], "model_ids": [model["id"]]},
    )
    mine = {"Authorization": f"Bearer {created.json()['key']}"}
    hidden = client.get(f"/v1/models/{other['id']}/inbox", headers=mine)
    assert hidden.status_code == 404 and error_code(hidden) == "model_not_found"
    flag = client.post(f"/v1/answers/{answer_id}/feedback", json={"label": "bag"}, headers=mine)
    assert flag.status_code == 404 and error_code(flag) == "answer_not_found"
    assert client.get(f"/v1/models/{model['id']}/inbox", headers=mine).json() == []
    capture = client.put(
        f"/v1/models/{model['id']}/feedback-capture", json={"enabled": True}, headers=mine
    )
    assert capture.status_code == 403


def test_answers_past_their_retention_are_refused_then_collected(
    client: TestClient, model: dict[str, Any], fashion: Any
) -> None:
    _capture(client, model["id"], retention_hours=1)
    predictions = _classify(client, model["id"], _pngs(fashion, 2))["predictions"]
    open_id, expired_id = (p["answer_id"] for p in predictions)
    right = next(label for label in LABELS if label != predictions[0]["label"])
    assert _flag(client, open_id, label=right).status_code == 201
    with session_scope(_runtime(client).session_factory) as session:
        session.execute(update(Answer).values(expires_at=utcnow() - timedelta(minutes=1)))
    expired = _flag(client, expired_id, label=right)
    assert expired.status_code == 410 and error_code(expired) == "answer_expired"

    before = client.get("/v1/storage").json()["blobs"]
    dry = client.post("/v1/storage/gc", json={"dry_run": True}).json()
    assert dry["expired_answers"] == 0 and dry["deleted_blobs"] == 1
    report = client.post("/v1/storage/gc", json={}).json()
    # The unflagged answer and its image are gone; the open item stays, with its image.
    assert report["expired_answers"] == 1 and report["deleted_blobs"] == 1
    assert client.get("/v1/storage").json()["blobs"] == before - 1
    gone = _flag(client, expired_id, label=right)
    assert gone.status_code == 404 and error_code(gone) == "answer_not_found"
    [item] = client.get(f"/v1/models/{model['id']}/inbox").json()
    assert item["id"] == open_id and item["status"] == "open"
    assert client.get(item["image_url"]).content == _pngs(fashion, 1)[0]


def test_chat_completions_are_flagged_with_the_right_answer(
    client: TestClient, vlm: dict[str, Any], fashion: Any
) -> None:
    _capture(client, vlm["id"])
    plain = client.post("/v1/chat/completions", json=ask(fashion.images[0]))
    assert plain.status_code == 200, plain.text
    completion = plain.json()
    assert completion["id"].startswith(f"chatcmpl-{vlm['id']}_")
    streamed = client.post("/v1/chat/completions", json=ask(fashion.images[1], stream=True))
    chunks = [json.loads(event) for event in sse_events(streamed.text) if event != "[DONE]"]
    stream_id = chunks[0]["id"]
    assert {chunk["id"] for chunk in chunks} == {stream_id}

    wrong_field = _flag(client, completion["id"], label="a coat")
    assert wrong_field.status_code == 422 and error_code(wrong_field) == "answer_required"
    flagged = _flag(client, completion["id"], answer="an ankle boot")
    assert flagged.status_code == 201, flagged.text
    item = flagged.json()
    assert item["kind"] == "chat" and item["question"] == "What is in the picture?"
    assert item["served"] == completion["choices"][0]["message"]["content"]
    assert _flag(client, stream_id, answer="a trouser").status_code == 201

    accepted = client.post(
        f"/v1/models/{vlm['id']}/inbox/corrections",
        json={"item_ids": [completion["id"], stream_id]},
    )
    assert accepted.status_code == 202, accepted.text
    with session_scope(_runtime(client).session_factory) as session:
        examples = corrections_repository.examples(session, accepted.json()["correction_id"])
        assert [(e.question, e.answer) for e in examples] == [
            ("What is in the picture?", "an ankle boot"),
            ("What is in the picture?", "a trouser"),
        ]
