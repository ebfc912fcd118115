"""Bodies in two encodings: each domain's ``forms.py`` reads multipart and JSON into one typed
input, so the same request answers the same whichever encoding carried it; and a body is
parsed only for a caller whose key passed."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import pytest
from fastapi.testclient import TestClient

from catalogue.captions import DEFAULT_CAPTION_TEMPLATE
from service.api.uploads import RequestBody
from service.corrections.forms import correction_form
from service.corrections.schemas import CorrectionOptions, SubmittedExample
from service.registration.forms import eval_set_form
from service.serving import forms as serving_forms
from tests.api.conftest import error_code
from tests.conftest import to_png


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def classify_form(body: RequestBody) -> Any:
    return asyncio.run(serving_forms.classify_form(body))


def embed_form(body: RequestBody) -> Any:
    return asyncio.run(serving_forms.embed_form(body))


def _pngs(fashion: Any, count: int) -> list[bytes]:
    return [to_png(image) for image in fashion.images[:count]]


def test_each_form_reads_both_encodings_into_the_same_input(fashion: Any) -> None:
    pngs = _pngs(fashion, 3)
    names = [fashion.class_names[label] for label in fashion.labels[:3]]

    classify = classify_form(
        RequestBody(
            files={"images": pngs},
            fields={"labels": ["coat", "bag"]},
        )
    )
    # url-safe base64 behind a data: prefix decodes to the same bytes.
    data_url = "data:image/png;base64," + base64.urlsafe_b64encode(pngs[1]).decode()
    assert classify == classify_form(
        RequestBody(
            json={"images": [_b64(pngs[0]), data_url, _b64(pngs[2])], "labels": ["coat", "bag"]},
            is_json=True,
        )
    )
    assert (classify.images, classify.version_id) == (pngs, None)
    assert classify.template == DEFAULT_CAPTION_TEMPLATE

    embed = embed_form(RequestBody(files={"images": pngs[:1]}, fields={"texts": ["a coat"]}))
    assert embed == embed_form(
        RequestBody(json={"images": [_b64(pngs[0])], "texts": ["a coat"]}, is_json=True)
    )
    assert (embed.images, embed.texts) == (pngs[:1], ["a coat"])

    eval_set = eval_set_form(
        RequestBody(
            files={"images": pngs},
            fields={
                "name": ["shoes"],
                "max_drop": ["2.5"],
                "labels": ["yes", names[1], names[2]],
                "questions": ["Is it a shoe?", "", ""],
            },
        )
    )
    assert eval_set == eval_set_form(
        RequestBody(
            json={
                "name": "shoes",
                "max_drop": 2.5,
                "examples": [
                    {"image_base64": _b64(pngs[0]), "label": "yes", "question": "Is it a shoe?"},
                    {"image_base64": _b64(pngs[1]), "label": names[1]},
                    {"image_base64": _b64(pngs[2]), "label": names[2]},
                ],
            },
            is_json=True,
        )
    )
    assert (eval_set.kind, eval_set.max_drop) == ("control", 2.5)
    assert eval_set.questions == ["Is it a shoe?", None, None]

    correction = correction_form(
        RequestBody(
            files={"images": pngs[:2], "eval_images": pngs[2:]},
            fields={
                "labels": names[:2],
                "eval_labels": names[2:],
                "seed": ["3"],
                "hyperparameters": ['{"steps": 2}'],
            },
        )
    )
    assert correction == correction_form(
        RequestBody(
            json={
                "examples": [
                    {"image_base64": _b64(png), "label": name}
                    for png, name in zip(pngs[:2], names[:2], strict=True)
                ],
                "eval_examples": [{"image_base64": _b64(pngs[2]), "label": names[2]}],
                "seed": 3,
                "hyperparameters": {"steps": 2},
            },
            is_json=True,
        )
    )
    assert correction.options == CorrectionOptions(seed=3, hyperparameters={"steps": 2})
    assert correction.eval_examples == [SubmittedExample(image=pngs[2], label=names[2])]


def test_classify_and_embed_answer_the_same_in_both_encodings(
    client: TestClient, model: dict[str, Any], fashion: Any
) -> None:
    base = f"/v1/models/{model['id']}"
    pngs = _pngs(fashion, 3)
    files = [("images", (f"{i}.png", png, "image/png")) for i, png in enumerate(pngs)]
    labels = ["coat", "bag", "sneaker"]
    template = "a photo of a {}, a kind of clothing"
    version = {"version_id": model["active_version_id"]}

    multipart = client.post(
        f"{base}/classify", files=files, data={"labels": labels, "template": template, **version}
    )
    as_json = client.post(
        f"{base}/classify",
        json={"images": [_b64(png) for png in pngs], "labels": labels, "template": template}
        | version,
    )
    assert multipart.status_code == as_json.status_code == 200, (multipart.text, as_json.text)
    first, second = multipart.json(), as_json.json()
    assert first["version_id"] == second["version_id"] == model["active_version_id"]
    assert first["labels"] == second["labels"] == labels
    assert [p["label"] for p in first["predictions"]] == [p["label"] for p in second["predictions"]]
    for mine, theirs in zip(first["predictions"], second["predictions"], strict=True):
        assert mine["probabilities"] == pytest.approx(theirs["probabilities"], abs=1e-5)
    # The template is read from both encodings: another one changes the probabilities.
    plain = client.post(f"{base}/classify", files=files, data={"labels": labels}).json()
    assert plain["predictions"][0]["probabilities"] != pytest.approx(
        first["predictions"][0]["probabilities"], abs=1e-5
    )

    texts = ["a coat", "a bag"]
    multipart = client.post(f"{base}/embed", files=files[:2], data={"texts": texts})
    as_json = client.post(
        f"{base}/embed", json={"images": [_b64(png) for png in pngs[:2]], "texts": texts}
    )
    assert multipart.status_code == as_json.status_code == 200, (multipart.text, as_json.text)
    first, second = multipart.json(), as_json.json()
    assert (len(first["image_embeddings"]), len(first["text_embeddings"])) == (2, 2)
    for mine, theirs in zip(
        first["image_embeddings"] + first["text_embeddings"],
        second["image_embeddings"] + second["text_embeddings"],
        strict=True,
    ):
        assert mine == pytest.approx(theirs, abs=1e-5)
    assert first["image_embeddings"][0] != pytest.approx(first["image_embeddings"][1], abs=1e-3)


@pytest.mark.parametrize("route", ["corrections", "eval-sets", "classify", "embed"])
def test_a_body_is_not_read_for_an_unknown_key(
    client: TestClient, model: dict[str, Any], route: str
) -> None:
    url = f"/v1/models/{model['id']}/{route}"
    stranger = {"Authorization": "Bearer not-a-key"}
    # Neither an unsupported encoding nor a body that fails validation is looked at first.
    for response in (
        client.post(url, content=b"labels=a", headers=stranger | {"content-type": "text/plain"}),
        client.post(url, json={"examples": "not a list", "labels": 3}, headers=stranger),
    ):
        assert response.status_code == 401, response.text
        assert error_code(response) == "invalid_api_key"
    # With the key, the same bodies are refused for what they are.
    unsupported = client.post(url, content=b"labels=a", headers={"content-type": "text/plain"})
    assert unsupported.status_code == 415
    assert error_code(unsupported) == "unsupported_media_type"
    invalid = client.post(url, json={"examples": "not a list", "labels": 3})
    assert invalid.status_code == 422, invalid.text
