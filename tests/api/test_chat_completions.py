"""LLaVA models over HTTP: registration with a CLIP pair, OpenAI-compatible chat completions
(plain, streamed, pinned, through the official OpenAI client), and bad input."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from standin.factory import VisionShape, build_tiny_dual_encoder
from tests.api.conftest import error_code
from tests.conftest import ADMIN_KEY, to_png
from tests.live_server import serve_app


def data_url(image: Image.Image) -> str:
    return "data:image/png;base64," + base64.b64encode(to_png(image)).decode()


def ask(image: Image.Image, question: str = "What is in the picture?", **extra: Any) -> dict:
    return {
        "model": "tiny-vlm",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": data_url(image)}},
                    {"type": "text", "text": question},
                ],
            }
        ],
        "max_tokens": 8,
        **extra,
    }


def sse_events(text: str) -> list[str]:
    return [line.removeprefix("data: ") for line in text.splitlines() if line.startswith("data: ")]


def test_registration_pairs_the_vlm_with_a_clip_checkpoint(vlm: dict[str, Any]) -> None:
    assert vlm["family"] == "llava"
    assert vlm["generative"] is True
    assert vlm["vision_towers_equal"] is True  # the tiny VLM's tower is a copy of the pair's
    assert vlm["active_version_number"] == 1


def test_registration_reports_unequal_tower_weights(
    client: TestClient, api_vlm_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    other_pair = build_tiny_dual_encoder(tmp_path_factory.mktemp("pair") / "other", seed=5)
    response = client.post(
        "/v1/models",
        json={
            "name": "vlm-other-pair",
            "base_path": str(api_vlm_dir),
            "pair_path": str(other_pair),
        },
    )
    assert response.status_code == 201, response.text
    assert response.json()["vision_towers_equal"] is False


def test_registration_refuses_towers_of_different_architecture(
    client: TestClient, api_vlm_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    wider = VisionShape(hidden_size=96, num_heads=4, intermediate_size=192)
    other_pair = build_tiny_dual_encoder(tmp_path_factory.mktemp("pair") / "wide", vision=wider)
    response = client.post(
        "/v1/models",
        json={"name": "mismatch", "base_path": str(api_vlm_dir), "pair_path": str(other_pair)},
    )
    assert response.status_code == 422
    assert error_code(response) == "vision_tower_mismatch"
    assert "hidden_size" in response.json()["error"]["message"]
    assert client.get("/v1/models").json() == []  # nothing recorded


def test_registration_needs_a_pair_for_llava_and_none_for_dual_encoders(
    client: TestClient, api_vlm_dir: Path, api_model_dir: Path
) -> None:
    alone = client.post("/v1/models", json={"name": "alone", "base_path": str(api_vlm_dir)})
    assert alone.status_code == 422 and error_code(alone) == "pair_required"
    paired = client.post(
        "/v1/models",
        json={"name": "clip", "base_path": str(api_model_dir), "pair_path": str(api_model_dir)},
    )
    assert paired.status_code == 422 and error_code(paired) == "pair_not_applicable"
    pair_is_vlm = client.post(
        "/v1/models",
        json={"name": "vv", "base_path": str(api_vlm_dir), "pair_path": str(api_vlm_dir)},
    )
    assert pair_is_vlm.status_code == 422 and error_code(pair_is_vlm) == "pair_unloadable"
    assert client.get("/v1/models").json() == []


def test_chat_answers_with_the_active_version_and_greedy_is_repeatable(
    client: TestClient, vlm: dict[str, Any]
) -> None:
    image = Image.new("RGB", (40, 40), (220, 30, 30))
    first = client.post("/v1/chat/completions", json=ask(image))
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["object"] == "chat.completion"
    assert body["model"] == "tiny-vlm"
    assert body["version_id"] == vlm["active_version_id"] == body["system_fingerprint"]
    assert body["version_number"] == 1
    [choice] = body["choices"]
    assert choice["message"]["role"] == "assistant"
    assert isinstance(choice["message"]["content"], str)
    assert choice["finish_reason"] in {"stop", "length"}
    usage = body["usage"]
    assert usage["completion_tokens"] <= 8
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    again = client.post("/v1/chat/completions", json=ask(image)).json()
    assert again["choices"][0]["message"] == choice["message"]


def test_streamed_answer_joins_to_the_plain_answer(client: TestClient, vlm: dict[str, Any]) -> None:
    image = Image.new("RGB", (40, 40), (30, 30, 220))
    plain = client.post("/v1/chat/completions", json=ask(image)).json()
    streamed = client.post("/v1/chat/completions", json=ask(image, stream=True))
    assert streamed.status_code == 200
    assert streamed.headers["content-type"].startswith("text/event-stream")
    events = sse_events(streamed.text)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    assert all(chunk["object"] == "chat.completion.chunk" for chunk in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert {chunk["version_id"] for chunk in chunks} == {vlm["active_version_id"]}
    text = "".join(chunk["choices"][0]["delta"].get("content", "") for chunk in chunks)
    assert text == plain["choices"][0]["message"]["content"]
    assert chunks[-1]["choices"][0]["finish_reason"] == plain["choices"][0]["finish_reason"]


def test_a_pinned_version_answers(client: TestClient, vlm: dict[str, Any]) -> None:
    image = Image.new("RGB", (40, 40), (30, 200, 30))
    response = client.post(
        "/v1/chat/completions", json=ask(image, version_id=vlm["active_version_id"])
    )
    assert response.status_code == 200
    assert response.json()["version_id"] == vlm["active_version_id"]
    unknown = client.post(
        "/v1/chat/completions", json=ask(image, version_id="00000000-0000-0000-0000-000000000000")
    )
    assert unknown.status_code == 404


def test_the_official_openai_client_works_unchanged(
    settings: Any, api_vlm_dir: Path, api_model_dir: Path
) -> None:
    openai = pytest.importorskip("openai")
    with serve_app(settings) as server:
        admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
        import httpx

        registered = httpx.post(
            f"{server.url}/v1/models",
            headers=admin,
            json={
                "name": "tiny-vlm",
                "base_path": str(api_vlm_dir),
                "pair_path": str(api_model_dir),
            },
            timeout=60,
        )
        assert registered.status_code == 201, registered.text
        client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=ADMIN_KEY, max_retries=0)
        request = ask(Image.new("RGB", (40, 40), (200, 200, 30)))
        completion = client.chat.completions.create(**request)
        answer = completion.choices[0].message.content
        assert completion.system_fingerprint == registered.json()["active_version_id"]
        pieces = [
            chunk.choices[0].delta.content or ""
            for chunk in client.chat.completions.create(**request, stream=True)
            if chunk.choices
        ]
        assert "".join(pieces) == answer
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(
                base_url=f"{server.url}/v1", api_key="vlmc_wrong", max_retries=0
            ).chat.completions.create(**request)


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (lambda r: r["messages"][0]["content"].pop(0), "image_required"),
        (
            lambda r: r["messages"][0]["content"].append(dict(r["messages"][0]["content"][0])),
            "too_many_images",
        ),
        (
            lambda r: r["messages"][0]["content"][0]["image_url"].update(
                url="https://example.com/cat.png"
            ),
            "image_not_data_url",
        ),
        (lambda r: r.update(max_tokens=100_000), "too_many_tokens"),
        (lambda r: r.update(max_tokens=250), "context_too_long"),
        (
            lambda r: r["messages"].extend(
                [{"role": "assistant", "content": "A cat."}, {"role": "user", "content": "Sure?"}]
            ),
            "multi_turn_unsupported",
        ),
        (
            lambda r: r["messages"].append({"role": "assistant", "content": "Hm"}),
            "last_message_not_user",
        ),
        (
            lambda r: r["messages"][0]["content"][0]["image_url"].update(
                url="data:image/png;base64,bm90IGFuIGltYWdl"
            ),
            "image_not_an_image",
        ),
    ],
)
def test_bad_chat_requests_get_a_code(
    client: TestClient, vlm: dict[str, Any], change: Any, code: str
) -> None:
    request = ask(Image.new("RGB", (40, 40)))
    change(request)
    response = client.post("/v1/chat/completions", json=request)
    assert response.status_code == 422, response.text
    assert error_code(response) == code


def test_a_dual_encoder_cannot_generate(client: TestClient, model: dict[str, Any]) -> None:
    request = ask(Image.new("RGB", (40, 40)))
    request["model"] = model["name"]
    response = client.post("/v1/chat/completions", json=request)
    assert response.status_code == 422
    assert error_code(response) == "not_generative"
    unknown = dict(request, model="no-such-model")
    assert error_code(client.post("/v1/chat/completions", json=unknown)) == "model_not_found"


def test_chat_needs_the_inference_scope(
    client: TestClient, vlm: dict[str, Any], key_with: Any
) -> None:
    key = key_with("corrections")
    response = client.post(
        "/v1/chat/completions",
        json=ask(Image.new("RGB", (40, 40))),
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 403


def test_answers_follow_the_active_version_and_a_rollback_gives_the_same_answers_back(
    client: TestClient, vlm: dict[str, Any], fashion: Any
) -> None:
    from tests.api.versions_helpers import train_version

    images = [image.convert("RGB") for image in fashion.images[:6]]
    before = [client.post("/v1/chat/completions", json=ask(image)).json() for image in images]
    assert {answer["version_number"] for answer in before} == {1}
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    version = train_version(
        runtime,
        vlm["id"],
        list(fashion.images[:16]),
        [fashion.class_names[label] for label in fashion.labels[:16]],
        learning_rate=5e-2,
    )
    moved = client.post(
        f"/v1/models/{vlm['id']}/activate", json={"version_id": version.id, "reason": "try"}
    )
    assert moved.status_code == 200, moved.text
    during = [client.post("/v1/chat/completions", json=ask(image)).json() for image in images]
    assert {answer["version_id"] for answer in during} == {version.id}
    # The tower changed, so the tokens the language model sees changed: some answer differs.
    assert [a["choices"][0] for a in during] != [b["choices"][0] for b in before]
    back = client.post(
        f"/v1/models/{vlm['id']}/rollback",
        json={"version_id": vlm["active_version_id"], "reason": "regression"},
    )
    assert back.status_code == 200, back.text
    after = [client.post("/v1/chat/completions", json=ask(image)).json() for image in images]
    assert [a["version_id"] for a in after] == [b["version_id"] for b in before]
    assert [a["choices"][0] for a in after] == [b["choices"][0] for b in before]


def test_concurrent_completions_are_batched_and_answer_what_they_answer_alone(
    client: TestClient, vlm: dict[str, Any], fashion: Any
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from service.observability import INFERENCE_BATCH_SIZE

    def batches() -> float:
        samples = {s.name: s.value for s in INFERENCE_BATCH_SIZE.collect()[0].samples}
        return samples["vlmc_inference_batch_items_count"]

    # Questions of one token count batch together; another length runs in its own batch.
    questions = ["What is in the picture?", "What is in the image??", "Is it a shoe?"]
    requests = [
        ask(image, question) for image in fashion.images[:8] for question in questions[:2]
    ] + [ask(fashion.images[0], questions[2])]

    def complete(body: dict) -> str:
        response = client.post("/v1/chat/completions", json=body)
        assert response.status_code == 200, response.text
        return str(response.json()["choices"][0]["message"]["content"])

    alone = [complete(body) for body in requests]
    before = batches()
    with ThreadPoolExecutor(max_workers=len(requests)) as pool:
        together = list(pool.map(complete, requests))
    assert together == alone
    assert batches() - before < len(requests)
