"""A version is named by its id or by its number, wherever the API takes a version: reading it,
activating it, rolling back to it, pinning a request to it (classify, embed, chat
completions; JSON and multipart), archiving it, exporting it. Both lead to the same row and
so to the same answers; an unknown number is 404 ``version_not_found`` like an unknown id, and
a number outside 1.. is 422 ``invalid_version_number``. Over HTTP, against the app (every
error response checked against the OpenAPI document)."""

from __future__ import annotations

import base64
import io
import tarfile
from typing import Any

import jsonschema_rs
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from service.runtime import Runtime
from tests.api.conftest import error_code
from tests.api.test_chat_completions import ask
from tests.api.versions_helpers import train_version
from tests.conftest import to_png


def _runtime(client: TestClient) -> Runtime:
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    return runtime


@pytest.fixture
def trained(client: TestClient, model: dict[str, Any], fashion: Any) -> dict[str, Any]:
    """Version 2 of ``model`` (held back: version 1 stays active)."""
    labels = [fashion.class_names[label] for label in fashion.labels]
    version = train_version(_runtime(client), model["id"], fashion.images, labels)
    assert version.number == 2
    return {"id": version.id, "number": 2}


def _classify(client: TestClient, model_id: str, fashion: Any, **data: Any) -> Any:
    return client.post(
        f"/v1/models/{model_id}/classify",
        files=[("images", ("a.png", to_png(fashion.images[0]), "image/png"))],
        data={"labels": ["coat", "bag"], **data},
    )


def _answered(response: Any) -> dict[str, Any]:
    """A classify answer without its answer ids (each response has fresh ones)."""
    assert response.status_code == 200, response.text
    body = dict(response.json())
    for prediction in body["predictions"]:
        assert prediction.pop("answer_id").startswith("ans-")
    return body


def _classify_json(client: TestClient, model_id: str, fashion: Any, **body: Any) -> Any:
    image = base64.b64encode(to_png(fashion.images[0])).decode()
    return client.post(
        f"/v1/models/{model_id}/classify",
        json={"images": [image], "labels": ["coat", "bag"], **body},
    )


def test_reading_a_version_by_number_is_reading_it_by_id(
    client: TestClient, model: dict[str, Any], trained: dict[str, Any]
) -> None:
    base = f"/v1/models/{model['id']}/versions"
    for number, version_id in ((1, model["active_version_id"]), (2, trained["id"])):
        by_number = client.get(f"{base}/{number}")
        by_id = client.get(f"{base}/{version_id}")
        assert by_number.status_code == by_id.status_code == 200, by_number.text
        assert by_number.json() == by_id.json()
        assert by_number.json()["id"] == version_id and by_number.json()["number"] == number


def test_activate_and_rollback_by_number(
    client: TestClient, model: dict[str, Any], trained: dict[str, Any], fashion: Any
) -> None:
    url = f"/v1/models/{model['id']}"
    base_id = model["active_version_id"]
    activated = client.post(f"{url}/activate", json={"version_id": 2, "reason": "by number"})
    assert activated.status_code == 200, activated.text
    move = activated.json()
    assert (move["from_version_id"], move["to_version_id"]) == (base_id, trained["id"])
    assert client.get(url).json()["active_version_number"] == 2
    assert _classify(client, model["id"], fashion).json()["version_number"] == 2
    # The same refusal as for the id: it is the same row.
    for ref in (2, trained["id"]):
        again = client.post(f"{url}/activate", json={"version_id": ref})
        assert again.status_code == 409 and error_code(again) == "version_already_active"

    rolled = client.post(f"{url}/rollback", json={"version_id": 1, "reason": "by number"})
    assert rolled.status_code == 200, rolled.text
    assert rolled.json()["to_version_id"] == base_id
    assert _classify(client, model["id"], fashion).json()["version_id"] == base_id
    history = client.get(f"{url}/deployments").json()
    assert [(d["action"], d["to_version_id"]) for d in history] == [
        ("initial", base_id),
        ("activate", trained["id"]),
        ("rollback", base_id),
    ]


def test_a_request_pinned_by_number_answers_as_pinned_by_id(
    client: TestClient, model: dict[str, Any], trained: dict[str, Any], fashion: Any
) -> None:
    model_id = model["id"]
    for number, version_id in ((1, model["active_version_id"]), (2, trained["id"])):
        by_id = _answered(_classify(client, model_id, fashion, version_id=version_id))
        assert by_id["version_number"] == number
        # multipart: the number as text; JSON: the number as an integer.
        assert _answered(_classify(client, model_id, fashion, version_id=str(number))) == by_id
        assert _answered(_classify_json(client, model_id, fashion, version_id=number)) == by_id
        embed_by_id = client.post(
            f"/v1/models/{model_id}/embed", json={"texts": ["a coat"], "version_id": version_id}
        )
        embed_by_number = client.post(
            f"/v1/models/{model_id}/embed", json={"texts": ["a coat"], "version_id": number}
        )
        assert embed_by_number.status_code == 200, embed_by_number.text
        assert embed_by_number.json() == embed_by_id.json()
        embed_form = client.post(
            f"/v1/models/{model_id}/embed", data={"texts": ["a coat"], "version_id": str(number)}
        )
        assert embed_form.json() == embed_by_id.json()


def test_chat_completions_pinned_by_number(client: TestClient, vlm: dict[str, Any]) -> None:
    image = Image.new("RGB", (40, 40), (30, 200, 30))
    by_id = client.post(
        "/v1/chat/completions", json=ask(image, version_id=vlm["active_version_id"])
    )
    by_number = client.post("/v1/chat/completions", json=ask(image, version_id=1))
    assert by_number.status_code == 200, by_number.text
    assert by_number.json()["version_id"] == by_id.json()["version_id"]
    assert by_number.json()["version_number"] == 1
    answer = by_number.json()["choices"][0]["message"]["content"]
    assert answer == by_id.json()["choices"][0]["message"]["content"]
    unknown = client.post("/v1/chat/completions", json=ask(image, version_id=7))
    assert unknown.status_code == 404 and error_code(unknown) == "version_not_found"
    zero = client.post("/v1/chat/completions", json=ask(image, version_id=0))
    assert zero.status_code == 422 and error_code(zero) == "invalid_version_number"


def test_archiving_by_number(
    client: TestClient, model: dict[str, Any], trained: dict[str, Any]
) -> None:
    url = f"/v1/models/{model['id']}/versions"
    archived = client.post(f"{url}/2/archive")
    assert archived.status_code == 200, archived.text
    assert archived.json()["id"] == trained["id"] and archived.json()["archived_at"] is not None
    # The same row by its id: already archived.
    again = client.post(f"{url}/{trained['id']}/archive")
    assert again.status_code == 409 and error_code(again) == "version_archived"
    pinned = client.post(
        f"/v1/models/{model['id']}/embed", json={"texts": ["a coat"], "version_id": 2}
    )
    assert pinned.status_code == 409 and error_code(pinned) == "version_archived"
    active = client.post(f"{url}/1/archive")
    assert active.status_code == 409 and error_code(active) == "version_active"


def test_an_unknown_number_is_not_found_like_an_unknown_id(
    client: TestClient, model: dict[str, Any], fashion: Any
) -> None:
    model_id = model["id"]
    unknown_id = "00000000-0000-0000-0000-000000000000"
    for ref in (unknown_id, 2, 999_999_999):
        cases = [
            client.get(f"/v1/models/{model_id}/versions/{ref}"),
            client.post(f"/v1/models/{model_id}/activate", json={"version_id": ref}),
            client.post(f"/v1/models/{model_id}/rollback", json={"version_id": ref}),
            client.post(f"/v1/models/{model_id}/versions/{ref}/archive"),
            _classify(client, model_id, fashion, version_id=str(ref)),
            _classify_json(client, model_id, fashion, version_id=ref),
            client.post(
                f"/v1/models/{model_id}/embed", json={"texts": ["a coat"], "version_id": ref}
            ),
        ]
        for response in cases:
            assert response.status_code == 404, (ref, response.request.url, response.text)
            assert error_code(response) == "version_not_found"


def test_numbers_belong_to_their_model(
    client: TestClient, model: dict[str, Any], trained: dict[str, Any], api_model_dir: Any
) -> None:
    other = client.post("/v1/models", json={"name": "other", "base_path": str(api_model_dir)})
    assert other.status_code == 201, other.text
    other_id = other.json()["id"]
    # The other model's version 1 is its own base, not ``model``'s.
    assert (
        client.get(f"/v1/models/{other_id}/versions/1").json()["id"]
        == other.json()["active_version_id"]
    )
    assert client.get(f"/v1/models/{other_id}/versions/2").status_code == 404
    # By id, another model's version stays what it was: foreign.
    foreign = client.post(f"/v1/models/{other_id}/activate", json={"version_id": trained["id"]})
    assert foreign.status_code == 409 and error_code(foreign) == "version_foreign"


@pytest.mark.parametrize("text", ["0", "-1", "-7", "007", "1000000000", "99999999999999999999"])
def test_a_number_outside_the_range_is_refused_in_every_form(
    client: TestClient, model: dict[str, Any], fashion: Any, text: str
) -> None:
    model_id = model["id"]
    cases = [
        client.get(f"/v1/models/{model_id}/versions/{text}"),
        client.post(f"/v1/models/{model_id}/versions/{text}/archive"),
        _classify(client, model_id, fashion, version_id=text),
        client.post(f"/v1/models/{model_id}/embed", data={"texts": ["a"], "version_id": text}),
    ]
    if text != "007":  # a JSON integer has no leading zeros
        number = int(text)
        cases += [
            client.post(f"/v1/models/{model_id}/activate", json={"version_id": number}),
            client.post(f"/v1/models/{model_id}/rollback", json={"version_id": number}),
            _classify_json(client, model_id, fashion, version_id=number),
        ]
    for response in cases:
        assert response.status_code == 422, (text, response.request.url, response.text)
        assert error_code(response) == "invalid_version_number", response.text
    assert client.get(f"/v1/models/{model_id}").json()["active_version_number"] == 1


def test_a_json_number_is_an_integer(client: TestClient, model: dict[str, Any]) -> None:
    url = f"/v1/models/{model['id']}/activate"
    assert client.post(url, json={"version_id": 1.0}).json()["error"]["code"] == (
        "version_already_active"  # 1.0 is the integer 1 in JSON
    )
    for value in ("1", "-1", True, 1.5, None, ""):
        response = client.post(url, json={"version_id": value})
        assert response.status_code == 422, (value, response.text)
        assert error_code(response) == "validation_error"
    as_string = client.post(url, json={"version_id": "1"})
    assert "a version number is a JSON integer (1), not a string" in as_string.text


def test_the_document_states_both_forms(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    paths = document["paths"]

    def validator(schema: dict[str, Any]) -> Any:
        return jsonschema_rs.validator_for({**schema, "components": document["components"]})

    some_id = "8c6f1b4e-3f1d-4a51-9d4e-2b7f0c9a1e55"
    for path, method in [
        ("/v1/models/{model_id}/versions/{version_id}", "get"),
        ("/v1/models/{model_id}/versions/{version_id}/archive", "post"),
    ]:
        [parameter] = [p for p in paths[path][method]["parameters"] if p["name"] == "version_id"]
        text = validator(parameter["schema"])
        assert text.is_valid(some_id) and text.is_valid("3") and text.is_valid("999999999")
        assert not any(text.is_valid(bad) for bad in ("0", "-1", "03", "1000000000", "v"))
    for path in ("/v1/models/{model_id}/activate", "/v1/models/{model_id}/rollback"):
        body = validator(
            paths[path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        )
        assert body.is_valid({"version_id": some_id}) and body.is_valid({"version_id": 3})
        assert not any(body.is_valid({"version_id": bad}) for bad in (0, -1, "3", 1.5))
    for path, body in [
        ("/v1/models/{model_id}/classify", {"images": ["AAAA"], "labels": ["a"]}),
        ("/v1/models/{model_id}/embed", {"texts": ["a"]}),
    ]:
        content = paths[path]["post"]["requestBody"]["content"]
        field = validator(content["multipart/form-data"]["schema"]["properties"]["version_id"])
        assert field.is_valid("2") and field.is_valid(some_id) and not field.is_valid("0")
        as_json = validator(content["application/json"]["schema"])
        assert as_json.is_valid({**body, "version_id": 2})
        assert as_json.is_valid({**body, "version_id": some_id})
        assert not as_json.is_valid({**body, "version_id": "2"})
    chat = validator(
        paths["/v1/chat/completions"]["post"]["requestBody"]["content"]["application/json"][
            "schema"
        ]
    )
    turn = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    assert chat.is_valid({**turn, "version_id": 1}) and not chat.is_valid({**turn, "version_id": 0})


def test_exporting_by_number(
    client: TestClient, model: dict[str, Any], trained: dict[str, Any]
) -> None:
    url = f"/v1/models/{model['id']}/versions/{{}}/export"
    by_number = client.get(url.format(2))
    by_id = client.get(url.format(trained["id"]))
    assert by_number.status_code == by_id.status_code == 200, by_number.text
    disposition = by_number.headers["content-disposition"]
    assert disposition == by_id.headers["content-disposition"] and "-v2" in disposition

    def members(archive: bytes) -> list[tuple[str, int]]:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:") as tar:
            return [(member.name, member.size) for member in tar.getmembers()]

    assert members(by_number.content) == members(by_id.content)
