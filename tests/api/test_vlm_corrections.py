"""Corrections of a llava model over HTTP: trained through its answers by default, a label is
enough, and what cannot train is refused with a code before anything is queued."""

from __future__ import annotations

import base64
from typing import Any

from fastapi.testclient import TestClient

from tests.api.conftest import error_code
from tests.conftest import to_png


def _example(fashion: Any, index: int, **answer: str) -> dict[str, str]:
    image = base64.b64encode(to_png(fashion.images[index])).decode()
    return {"image_base64": image, **answer}


def _jobs(client: TestClient, model_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/v1/models/{model_id}/jobs")
    assert response.status_code == 200
    return list(response.json())


def test_a_llava_correction_trains_the_answers_and_one_label_is_enough(
    client: TestClient, vlm: dict[str, Any], fashion: Any
) -> None:
    # One label and nothing to contrast it with: the CLIP loss could not train this (a dual
    # encoder answers 422 single_class); the answer loss can.
    body = {"examples": [_example(fashion, i, label="coat") for i in range(3)]}
    response = client.post(f"/v1/models/{vlm['id']}/corrections", json=body)
    assert response.status_code == 202, response.text
    [job] = _jobs(client, vlm["id"])
    hyperparameters = job["hyperparameters"]
    assert hyperparameters["objective"] == "answer"
    assert hyperparameters["anchor_read_distillation"] > 0
    assert hyperparameters["answer_template"] == "A {}."


def test_the_answer_objective_on_a_dual_encoder_is_refused(
    client: TestClient, model: dict[str, Any], fashion: Any
) -> None:
    for hyperparameters in ({"objective": "answer"}, {"anchor_answer_kl": 1}):
        body = {
            "examples": [_example(fashion, i, label=f"l{i % 2}") for i in range(4)],
            "hyperparameters": hyperparameters,
        }
        response = client.post(f"/v1/models/{model['id']}/corrections", json=body)
        assert response.status_code == 422, response.text
        assert error_code(response) == "answer_objective_needs_vlm"
    assert _jobs(client, model["id"]) == []


def test_an_answer_longer_than_the_context_is_refused(
    client: TestClient, vlm: dict[str, Any], fashion: Any
) -> None:
    # The tiny VLM's language model holds 256 positions; this answer (within the 200
    # characters a text field may hold) takes more: its tokenizer never saw these letters, so
    # each of their two UTF-8 bytes is a token of its own.
    long_answer = "жёлтый " * 28
    body = {
        "examples": [
            _example(fashion, 0, label="coat"),
            _example(fashion, 1, question="What is it?", answer=long_answer),
        ]
    }
    response = client.post(f"/v1/models/{vlm['id']}/corrections", json=body)
    assert response.status_code == 422, response.text
    assert error_code(response) == "answer_too_long"
    assert "example 1" in response.json()["error"]["message"]
    assert _jobs(client, vlm["id"]) == []
    # The CLIP objective does not read answers as tokens: the same batch is accepted.
    clip = {**body, "hyperparameters": {"objective": "clip"}}
    assert client.post(f"/v1/models/{vlm['id']}/corrections", json=clip).status_code == 202
