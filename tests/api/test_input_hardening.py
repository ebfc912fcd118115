"""Hostile inputs get a 422 with a stable code, never a 500, and no error shows a server path;
one error style (invalid_json everywhere, 405 with Allow); one pixel limit, one message."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from service.settings import Settings
from tests.api.conftest import error_code
from tests.conftest import to_png


def test_nul_and_control_characters_are_rejected(
    client: TestClient, model: dict[str, Any], api_model_dir: Path, fashion: Any
) -> None:
    image = ("images", ("a.png", to_png(fashion.images[0]), "image/png"))
    base = f"/v1/models/{model['id']}"
    cases = [
        # The NUL byte in base_path was a 500 (ValueError: embedded null byte).
        client.post("/v1/models", json={"name": "x", "base_path": f"{api_model_dir}\x00"}),
        client.post("/v1/models", json={"name": "bad\x07name", "base_path": str(api_model_dir)}),
        client.post("/v1/api-keys", json={"name": "key\x00", "scopes": ["inference"]}),
        client.post(f"{base}/classify", files=[image], data={"labels": ["coat", "bag\x00"]}),
        client.post(f"{base}/classify", json={"images": ["AAAA"], "labels": ["a\u0085b"]}),
        client.post(f"{base}/embed", json={"texts": ["line\x1b[31m"]}),
        client.post(f"{base}/activate", json={"version_id": "v", "reason": "why\x00"}),
        client.post(
            f"{base}/eval-sets",
            files=[image, image],
            data={"name": "set\x0b", "labels": ["coat", "bag"]},
        ),
        client.post(
            f"{base}/corrections",
            files=[image, image],
            data={"labels": ["coat", "ba\x00g"]},
        ),
    ]
    for response in cases:
        assert response.status_code == 422, response.text
        assert error_code(response) == "invalid_characters", response.text
    assert len(client.get("/v1/models").json()) == 1
    # Free text may hold line breaks and tabs (a question, a rollback reason).
    reason = client.post(
        f"{base}/rollback", json={"version_id": model["active_version_id"], "reason": "a\n\tb"}
    )
    assert reason.status_code == 409 and error_code(reason) == "version_already_active"


@pytest.mark.parametrize(
    "path",
    [
        "/v1/models/" + "a" * 65,
        "/v1/models/a.b",
        "/v1/jobs/%00",
        "/v1/jobs/" + "9" * 200 + "/events",
        "/v1/models/m/versions/" + "v" * 65,
    ],
)
def test_path_identifiers_are_bounded(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 422, response.text
    assert error_code(response) == "validation_error"


def test_base_path_stays_inside_the_model_roots(
    make_settings: Callable[..., Settings], api_model_dir: Path, tmp_path: Path
) -> None:
    from service.app import create_app

    root = tmp_path / "roots" / "models"
    root.mkdir(parents=True)
    (root / "tiny").symlink_to(api_model_dir, target_is_directory=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "escape").symlink_to(outside, target_is_directory=True)
    (root / "empty").mkdir()
    settings = make_settings(model_roots=[root])
    with TestClient(create_app(settings), headers={"Authorization": client_key()}) as client:
        refused = {
            "absolute outside": str(api_model_dir),
            "dot-dot": "../../outside",
            "absolute dot-dot": f"{root}/../../outside",
            "symlink out": "escape",
            "symlink to a checkpoint outside": "tiny",
            "missing": "nothing-here",
        }
        for name, base_path in refused.items():
            response = client.post("/v1/models", json={"name": name, "base_path": base_path})
            assert response.status_code == 422, (name, response.text)
            assert error_code(response) == "checkpoint_not_found"
            _assert_no_server_path(response, tmp_path, api_model_dir)
        unloadable = client.post("/v1/models", json={"name": "e", "base_path": "empty"})
        assert unloadable.status_code == 422 and error_code(unloadable) == "checkpoint_unloadable"
        _assert_no_server_path(unloadable, tmp_path, api_model_dir)
    # The same model through a root that holds it: relative and absolute both register.
    settings = make_settings(model_roots=[api_model_dir.parent])
    with TestClient(create_app(settings), headers={"Authorization": client_key()}) as client:
        by_name = client.post("/v1/models", json={"name": "a", "base_path": api_model_dir.name})
        assert by_name.status_code == 201, by_name.text
        assert by_name.json()["base_path"] == str(api_model_dir.resolve())
        absolute = client.post("/v1/models", json={"name": "b", "base_path": str(api_model_dir)})
        assert absolute.status_code == 201, absolute.text


def client_key() -> str:
    from tests.conftest import ADMIN_KEY

    return f"Bearer {ADMIN_KEY}"


def _assert_no_server_path(response: Any, *paths: Path) -> None:
    text = response.text
    for path in (*paths, Path.cwd()):
        assert str(path) not in text, text
    assert os.sep + "tmp" not in text, text


@pytest.mark.parametrize(
    ("method", "path", "content_type"),
    [
        ("post", "/v1/api-keys", "application/json"),
        ("post", "/v1/models", "application/json"),
        ("post", "/v1/models/{model}/corrections", "application/json"),
        ("post", "/v1/models/{model}/activate", "application/json"),
        ("post", "/v1/models/{model}/classify", "application/json"),
    ],
)
@pytest.mark.parametrize("body", [b'{"name": ', b"\xff\xfe not utf-8"], ids=["cut", "not-utf8"])
def test_malformed_json_is_invalid_json_everywhere(
    client: TestClient,
    model: dict[str, Any],
    method: str,
    path: str,
    content_type: str,
    body: bytes,
) -> None:
    response = client.request(
        method,
        path.format(model=model["id"]),
        content=body,
        headers={"Content-Type": content_type},
    )
    assert response.status_code == 422, response.text
    assert error_code(response) == "invalid_json"


def test_method_not_allowed_names_the_allowed_methods(
    client: TestClient, model: dict[str, Any]
) -> None:
    cases = {
        f"/v1/models/{model['id']}": {"GET", "DELETE"},
        "/v1/models": {"GET", "POST"},
        f"/v1/models/{model['id']}/classify": {"POST"},
    }
    for path, allowed in cases.items():
        response = client.put(path, json={})
        assert response.status_code == 405, response.text
        assert error_code(response) == "method_not_allowed"
        assert set(response.headers["Allow"].replace(" ", "").split(",")) == allowed


def _png_of_size(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("1", (width, height)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(max_image_pixels=10_000)


def test_one_pixel_limit_and_one_message(client: TestClient, model: dict[str, Any]) -> None:
    # Over the setting only, and over PIL's own decompression-bomb threshold too (180 million
    # pixels; a few kB compressed): the same code, the same limit in the message.
    url = f"/v1/models/{model['id']}/classify"
    messages = []
    for data in (_png_of_size(101, 100), _png_of_size(14_000, 13_000)):
        response = client.post(
            url, files=[("images", ("a.png", data, "image/png"))], data={"labels": ["a", "b"]}
        )
        assert response.status_code == 422, response.text
        assert error_code(response) == "image_too_many_pixels"
        messages.append(response.json()["error"]["message"])
    assert messages == ["images[0]: more than the limit of 10000 pixels"] * 2
    fits = client.post(
        url,
        files=[("images", ("a.png", _png_of_size(100, 100), "image/png"))],
        data={"labels": ["a", "b"]},
    )
    assert fits.status_code == 200, fits.text


def test_a_body_declared_over_the_limit_is_refused_unread_and_counted(
    make_settings: Callable[..., Settings],
) -> None:
    from service.app import create_app
    from tests.conftest import ADMIN_KEY

    app = create_app(make_settings(max_request_bytes=1000))
    with TestClient(app, headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as client:
        response = client.post("/v1/models", content=b"x" * 2000)
        assert response.status_code == 413 and error_code(response) == "request_too_large"
        assert client.get("/v1/no-such-route").status_code == 404
        metrics = client.get("/metrics").text
    assert 'route="unmatched",status="404"' in metrics
    assert 'method="POST",route="unmatched",status="413"' in metrics
