"""Every bad input (a broken or oversized image, bad base64, empty or mismatched labels, a
bad method or hyperparameter, an unknown id...) gets a clear 4xx with a stable code in the
common error body (``service/api/errors.py``), and nothing is recorded."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from service.settings import Settings
from service.validation import MAX_BASE64_LENGTH
from tests.api.conftest import error_code
from tests.conftest import to_png

MAX_BYTES = 64_000
MAX_EXAMPLES = 8


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(
        max_upload_bytes=MAX_BYTES, max_examples_per_batch=MAX_EXAMPLES, max_image_pixels=4_000_000
    )


def _real_images(fashion: Any, count: int) -> tuple[list[bytes], list[str]]:
    images = [to_png(image) for image in fashion.images[:count]]
    labels = [fashion.class_names[label] for label in fashion.labels[:count]]
    return images, labels


def _post_files(
    client: TestClient, model_id: str, images: list[bytes], labels: list[str], **data: Any
) -> Any:
    files = [("images", (f"{i}.png", data_, "image/png")) for i, data_ in enumerate(images)]
    return client.post(
        f"/v1/models/{model_id}/corrections", files=files, data={"labels": labels, **data}
    )


def _assert_nothing_recorded(client: TestClient, model_id: str) -> None:
    response = client.get(f"/v1/models/{model_id}/jobs")
    assert response.status_code == 200
    assert response.json() == []


def _truncated_png(fashion: Any) -> bytes:
    data = to_png(fashion.images[0].resize((64, 64)))
    return data[: len(data) // 2]


def _bomb_png() -> bytes:
    # 6000x6000 1-bit pixels compress to a few kB but decode to 36 million pixels.
    buffer = io.BytesIO()
    Image.new("1", (6000, 6000)).save(buffer, format="PNG")
    assert len(buffer.getvalue()) < 20_000
    return buffer.getvalue()


def _oversized_png() -> bytes:
    noise = Image.effect_noise((256, 256), 100).convert("RGB")
    data = to_png(noise)
    assert len(data) > MAX_BYTES
    return data


@pytest.mark.parametrize(
    ("make_bad", "status", "code"),
    [
        (lambda f: b"this is not an image at all", 422, "image_not_an_image"),
        (lambda f: b"", 422, "image_empty"),
        (_truncated_png, 422, "image_truncated"),
        (lambda f: _bomb_png(), 422, "image_too_many_pixels"),
        (lambda f: _oversized_png(), 413, "image_too_large"),
    ],
    ids=["not-an-image", "zero-bytes", "truncated-png", "decompression-bomb", "over-size-limit"],
)
def test_bad_image_is_rejected_with_its_code(
    client: TestClient,
    model: dict[str, Any],
    fashion: Any,
    make_bad: Callable[[Any], bytes],
    status: int,
    code: str,
) -> None:
    images, labels = _real_images(fashion, 4)
    images[2] = make_bad(fashion)
    response = _post_files(client, model["id"], images, labels)
    assert response.status_code == status, response.text
    assert error_code(response) == code
    _assert_nothing_recorded(client, model["id"])


def test_bad_base64_image_in_json_form(client: TestClient, model: dict[str, Any]) -> None:
    body = {"examples": [{"image_base64": "%%%not base64%%%", "label": "coat"}]}
    response = client.post(f"/v1/models/{model['id']}/corrections", json=body)
    assert response.status_code == 422
    assert error_code(response) == "invalid_base64"
    _assert_nothing_recorded(client, model["id"])


def test_too_many_examples(client: TestClient, model: dict[str, Any], fashion: Any) -> None:
    images, labels = _real_images(fashion, MAX_EXAMPLES + 1)
    response = _post_files(client, model["id"], images, labels)
    assert response.status_code == 422
    assert error_code(response) == "too_many_examples"
    _assert_nothing_recorded(client, model["id"])


@pytest.mark.parametrize("label", ["", "   "])
def test_empty_label(client: TestClient, model: dict[str, Any], fashion: Any, label: str) -> None:
    images, labels = _real_images(fashion, 3)
    labels[1] = label
    response = _post_files(client, model["id"], images, labels)
    assert response.status_code == 422
    assert error_code(response) == "empty_label"
    _assert_nothing_recorded(client, model["id"])


def test_a_single_class_with_nothing_to_contrast_is_rejected(
    client: TestClient, model: dict[str, Any], fashion: Any
) -> None:
    images = [to_png(image) for image in fashion.images[:4]]
    one_label = ["ankle boot"] * 4
    response = _post_files(client, model["id"], images, one_label)
    assert response.status_code == 422 and error_code(response) == "single_class"
    _assert_nothing_recorded(client, model["id"])
    # Once the model knows other labels (an eval set), the same batch can train: they are its
    # negatives, as in the worker.
    eval_images, eval_labels = _real_images(fashion, 4)
    created = client.post(
        f"/v1/models/{model['id']}/eval-sets",
        files=[("images", (f"{i}.png", d, "image/png")) for i, d in enumerate(eval_images)],
        data={"name": "known", "kind": "control", "labels": eval_labels},
    )
    assert created.status_code == 201, created.text
    assert set(eval_labels) - {"ankle boot"}
    accepted = _post_files(client, model["id"], images, one_label)
    assert accepted.status_code == 202, accepted.text


def test_label_count_must_match_images(
    client: TestClient, model: dict[str, Any], fashion: Any
) -> None:
    images, labels = _real_images(fashion, 3)
    response = _post_files(client, model["id"], images, labels[:2])
    assert response.status_code == 422
    assert error_code(response) == "labels_mismatch"


def test_no_examples(client: TestClient, model: dict[str, Any]) -> None:
    response = client.post(f"/v1/models/{model['id']}/corrections", json={"examples": []})
    assert response.status_code == 422
    assert error_code(response) == "no_examples"


@pytest.mark.parametrize(
    ("options", "code"),
    [
        ({"method": "sgd-magic"}, "unknown_method"),
        ({"method": "lorsu", "hyperparameters": '{"rank": 0}'}, "invalid_hyperparameter"),
        ({"method": "lora", "hyperparameters": '{"no_such_field": 1}'}, "invalid_hyperparameter"),
        ({"hyperparameters": "{not json"}, "invalid_hyperparameters_json"),
        # JSON, but not the object the field holds.
        ({"hyperparameters": "1"}, "invalid_hyperparameters_json"),
        ({"hyperparameters": "[]"}, "invalid_hyperparameters_json"),
        ({"seed": "minus one"}, "validation_error"),
        ({"held_out_fraction": "1.5"}, "validation_error"),
    ],
)
def test_bad_method_or_hyperparameters(
    client: TestClient, model: dict[str, Any], fashion: Any, options: dict[str, str], code: str
) -> None:
    images, labels = _real_images(fashion, 4)
    response = _post_files(client, model["id"], images, labels, **options)
    assert response.status_code == 422, response.text
    assert error_code(response) == code
    _assert_nothing_recorded(client, model["id"])


def test_json_validation_errors_use_the_error_body(
    client: TestClient, model: dict[str, Any]
) -> None:
    response = client.post(f"/v1/models/{model['id']}/corrections", json={"examples": "nope"})
    assert response.status_code == 422
    assert error_code(response) == "validation_error"
    assert response.json()["error"]["details"][0]["loc"] == ["examples"]


def test_example_needs_exactly_one_kind_of_answer(
    client: TestClient, model: dict[str, Any], fashion: Any
) -> None:
    image = base64.b64encode(to_png(fashion.images[0])).decode()
    both = {"image_base64": image, "label": "coat", "question": "what?", "answer": "coat"}
    response = client.post(f"/v1/models/{model['id']}/corrections", json={"examples": [both]})
    assert response.status_code == 422
    assert error_code(response) == "example_needs_label_or_qa"


def test_unsupported_content_type(client: TestClient, model: dict[str, Any]) -> None:
    response = client.post(
        f"/v1/models/{model['id']}/corrections",
        content=b"labels=coat",
        headers={"Content-Type": "text/plain"},
    )
    assert response.status_code == 415
    assert error_code(response) == "unsupported_media_type"


def test_unknown_model_version_and_job(client: TestClient, model: dict[str, Any]) -> None:
    missing = "00000000-0000-0000-0000-000000000000"
    cases = [
        (client.get(f"/v1/models/{missing}"), "model_not_found"),
        (
            client.post(f"/v1/models/{missing}/corrections", json={"examples": []}),
            "model_not_found",
        ),
        (client.get(f"/v1/models/{model['id']}/versions/{missing}"), "version_not_found"),
        (
            client.post(f"/v1/models/{model['id']}/rollback", json={"version_id": missing}),
            "version_not_found",
        ),
        (client.get(f"/v1/jobs/{missing}"), "job_not_found"),
        (client.get(f"/v1/jobs/{missing}/events"), "job_not_found"),
        (client.post(f"/v1/jobs/{missing}/cancel"), "job_not_found"),
        (client.get("/v1/no-such-path"), "not_found"),
    ]
    for response, code in cases:
        assert response.status_code == 404, response.text
        assert error_code(response) == code


def test_a_good_request_after_bad_ones_is_accepted(
    client: TestClient, model: dict[str, Any], fashion: Any
) -> None:
    images, labels = _real_images(fashion, 4)
    bad = list(images)
    bad[0] = b"garbage"
    assert _post_files(client, model["id"], bad, labels).status_code == 422
    response = _post_files(client, model["id"], images, labels)
    assert response.status_code == 202, response.text
    jobs = client.get(f"/v1/models/{model['id']}/jobs").json()
    assert [job["id"] for job in jobs] == [response.json()["job_id"]]


def test_out_of_range_and_loosely_typed_values_are_refused_not_coerced(
    client: TestClient, model: dict[str, Any], fashion: Any
) -> None:
    """An event cursor past the 64-bit row ids is a 422, not a 500; a destructive admin call
    does not run for real on a value that merely reads as false."""
    job_id = client.post(
        f"/v1/models/{model['id']}/corrections",
        json={
            "examples": [
                {"image_base64": base64.b64encode(to_png(image)).decode(), "label": label}
                for image, label in zip(fashion.images[:4], ["coat", "bag"] * 2, strict=True)
            ]
        },
    ).json()["job_id"]
    assert client.get(f"/v1/jobs/{job_id}/events", params={"after": 2**63 - 1}).json() == {
        "events": [],
        "next_after": 2**63 - 1,
    }
    too_far = client.get(f"/v1/jobs/{job_id}/events", params={"after": 2**63})
    assert too_far.status_code == 422 and error_code(too_far) == "validation_error"
    for loose in (0, "false", "0", None):
        refused = client.post("/v1/storage/gc", json={"dry_run": loose})
        assert refused.status_code == 422, (loose, refused.text)
        assert error_code(refused) == "validation_error"
    assert client.post("/v1/storage/gc", json={"dry_run": True}).json()["dry_run"] is True


@pytest.mark.parametrize(
    "label",
    ["cat\u200b", "\u202etac", "c\u00adat", "\u2066cat\u2069", "\ufeffcat"],
    ids=["zero-width-space", "right-to-left-override", "soft-hyphen", "isolate", "bom"],
)
def test_labels_with_invisible_characters_are_refused(
    client: TestClient, model: dict[str, Any], fashion: Any, label: str
) -> None:
    """A label that reads differently from what it is ("cat" + U+200B is not "cat"; U+202E
    shows a label backwards) is refused where labels arrive: corrections and classify."""
    png = base64.b64encode(to_png(fashion.images[0])).decode()
    corrected = client.post(
        f"/v1/models/{model['id']}/corrections",
        json={
            "examples": [
                {"image_base64": png, "label": label},
                {"image_base64": png, "label": "dog"},
            ]
        },
    )
    assert corrected.status_code == 422, corrected.text
    assert error_code(corrected) == "invalid_characters"
    classified = client.post(
        f"/v1/models/{model['id']}/classify", json={"images": [png], "labels": [label, "dog"]}
    )
    assert classified.status_code == 422, classified.text
    assert error_code(classified) == "invalid_characters"


def test_joiners_that_scripts_and_emoji_need_are_kept(
    client: TestClient, model: dict[str, Any], fashion: Any
) -> None:
    png = base64.b64encode(to_png(fashion.images[0])).decode()
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # one emoji, joined by U+200D
    classified = client.post(
        f"/v1/models/{model['id']}/classify", json={"images": [png], "labels": [family, "dog"]}
    )
    assert classified.status_code == 200, classified.text
    assert classified.json()["labels"] == [family, "dog"]


def test_one_label_in_two_unicode_forms_is_one_label(
    client: TestClient, model: dict[str, Any], fashion: Any
) -> None:
    """NFC: "café" typed with a combining accent and typed precomposed are the same label."""
    png = base64.b64encode(to_png(fashion.images[0])).decode()
    composed, decomposed = "caf\u00e9", "cafe\u0301"
    duplicate = client.post(
        f"/v1/models/{model['id']}/classify",
        json={"images": [png], "labels": [composed, decomposed]},
    )
    assert duplicate.status_code == 422, duplicate.text
    assert error_code(duplicate) == "duplicate_label"
    classified = client.post(
        f"/v1/models/{model['id']}/classify", json={"images": [png], "labels": [decomposed, "dog"]}
    )
    assert classified.status_code == 200, classified.text
    assert classified.json()["labels"] == [composed, "dog"]


def _wrong_media_type_requests(model_id: str) -> list[tuple[str, str]]:
    return [
        ("POST", "/v1/models"),
        ("POST", "/v1/api-keys"),
        ("POST", "/v1/chat/completions"),
        ("POST", f"/v1/models/{model_id}/activate"),
        ("POST", f"/v1/models/{model_id}/rollback"),
        ("POST", "/v1/storage/gc"),
        ("POST", f"/v1/models/{model_id}/corrections"),
        ("POST", f"/v1/models/{model_id}/classify"),
        ("POST", f"/v1/models/{model_id}/embed"),
        ("POST", f"/v1/models/{model_id}/eval-sets"),
    ]


def test_a_body_of_a_media_type_an_operation_does_not_take_is_415_everywhere(
    client: TestClient, model: dict[str, Any]
) -> None:
    for method, path in _wrong_media_type_requests(model["id"]):
        for headers in ({"Content-Type": "text/plain"}, {}):
            response = client.request(method, path, content=b'{"dry_run": true}', headers=headers)
            assert response.status_code == 415, (path, headers, response.text)
            assert error_code(response) == "unsupported_media_type"
    # JSON under a +json media type is JSON.
    gc = client.post(
        "/v1/storage/gc",
        content=b'{"dry_run": true}',
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert gc.status_code == 200, gc.text


def test_an_oversized_image_is_413_as_multipart_and_as_base64(
    client: TestClient, model: dict[str, Any]
) -> None:
    too_big = b"\x89PNG" + bytes(MAX_BYTES)
    multipart = client.post(
        f"/v1/models/{model['id']}/classify",
        files=[("images", ("big.png", too_big, "image/png"))],
        data={"labels": ["coat", "dog"]},
    )
    as_json = client.post(
        f"/v1/models/{model['id']}/classify",
        json={"images": [base64.b64encode(too_big).decode()], "labels": ["coat", "dog"]},
    )
    for response in (multipart, as_json):
        assert response.status_code == 413, response.text
        assert error_code(response) == "image_too_large"


def test_an_over_long_base64_string_is_413_image_too_large(
    client: TestClient, model: dict[str, Any]
) -> None:
    response = client.post(
        f"/v1/models/{model['id']}/classify",
        json={"images": ["A" * (MAX_BASE64_LENGTH + 4)], "labels": ["coat", "dog"]},
    )
    assert response.status_code == 413, response.text[:300]
    assert error_code(response) == "image_too_large"


def test_the_embed_limits_name_what_is_over(client: TestClient, model: dict[str, Any]) -> None:
    texts = client.post(
        f"/v1/models/{model['id']}/embed", json={"texts": ["a coat"] * (MAX_EXAMPLES + 1)}
    )
    assert texts.status_code == 422
    assert error_code(texts) == "too_many_texts"
    assert f"{MAX_EXAMPLES + 1} texts" in texts.json()["error"]["message"]


def test_an_empty_multipart_field_is_a_value_not_an_absent_one(
    client: TestClient, model: dict[str, Any], fashion: Any
) -> None:
    """``version_id=`` (empty) is refused like any other malformed id, not read as "the
    active version"; the same for an empty template or seed."""
    files = [("images", ("0.png", to_png(fashion.images[0]), "image/png"))]
    base = f"/v1/models/{model['id']}"
    as_json = client.post(
        f"{base}/classify",
        json={
            "images": [base64.b64encode(to_png(fashion.images[0])).decode()],
            "labels": ["coat", "bag"],
            "template": "",
        },
    )
    assert as_json.status_code == 422 and error_code(as_json) == "invalid_template"
    for path, data, code in [
        ("classify", {"labels": ["coat", "bag"], "version_id": ""}, "invalid_identifier"),
        ("classify", {"labels": ["coat", "bag"], "template": ""}, "invalid_template"),
        ("embed", {"texts": ["a coat"], "version_id": ""}, "invalid_identifier"),
        ("corrections", {"labels": ["coat"], "seed": ""}, "validation_error"),
    ]:
        response = client.post(f"{base}/{path}", files=files, data=data)
        assert response.status_code == 422, (path, data, response.text)
        assert error_code(response) == code, (path, data)
