"""The served OpenAPI document itself: references resolve, the bearer scheme is declared (the
Authorize button of /docs), error responses use the real error body, multipart bodies mark
their required fields, and /metrics is text."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient


@pytest.fixture
def document(client: TestClient) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    return dict(response.json())


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield method.upper(), path, operation


def test_every_reference_resolves(document: dict[str, Any]) -> None:
    refs = set(_refs(document))
    assert "#/components/schemas/CorrectionJson" in refs  # the JSON form of a multipart route
    for ref in refs:
        assert ref.startswith("#/"), ref
        node: Any = document
        for part in ref[2:].split("/"):
            assert part in node, f"{ref} does not resolve"
            node = node[part]
    assert "$defs" not in str(document)


def test_bearer_scheme_and_error_bodies(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes == {
        "ApiKey": {
            "type": "http",
            "scheme": "bearer",
            "description": schemes["ApiKey"]["description"],
        }
    }
    error_ref = {"$ref": "#/components/schemas/ErrorResponse"}
    for method, path, operation in _operations(document):
        responses = operation["responses"]
        if path.startswith("/v1/"):
            assert operation["security"] == [{"ApiKey": []}], (method, path)
            assert {"401", "503"} <= set(responses), (method, path)
        for status, response in responses.items():
            if int(status) >= 400 and path != "/readyz":
                assert response["content"] == {"application/json": {"schema": error_ref}}
        if "{" in path:
            assert "404" in responses and "422" in responses, (method, path)
    components = document["components"]["schemas"]
    assert "HTTPValidationError" not in components
    assert components["ErrorResponse"]["required"] == ["error"]
    assert set(components["ErrorDetail"]["required"]) == {"code", "message"}


def test_scopes_and_conflicts_are_documented(document: dict[str, Any]) -> None:
    paths = document["paths"]
    assert "403" in paths["/v1/models/{model_id}/classify"]["post"]["responses"]
    assert "403" not in paths["/v1/models/{model_id}"]["get"]["responses"]  # any key may read
    assert "409" in paths["/v1/models/{model_id}/rollback"]["post"]["responses"]
    assert "409" in paths["/v1/api-keys/{key_id}"]["delete"]["responses"]
    assert "409" not in paths["/v1/models/{model_id}/classify"]["post"]["responses"]
    assert {"413", "415"} <= set(paths["/v1/models/{model_id}/corrections"]["post"]["responses"])
    links = paths["/v1/models/{model_id}/corrections"]["post"]["responses"]["202"]["links"]
    assert links["GetJob"] == {
        "operationId": "read_job",
        "parameters": {"job_id": "$response.body#/job_id"},
    }


def test_multipart_bodies_mark_required_fields(document: dict[str, Any]) -> None:
    def multipart(path: str) -> dict[str, Any]:
        body = document["paths"][path]["post"]["requestBody"]
        assert body["required"] is True
        return dict(body["content"]["multipart/form-data"]["schema"])

    assert multipart("/v1/models/{model_id}/corrections")["required"] == ["images"]
    assert multipart("/v1/models/{model_id}/classify")["required"] == ["images", "labels"]
    assert multipart("/v1/models/{model_id}/eval-sets")["required"] == ["name", "images", "labels"]
    labels = multipart("/v1/models/{model_id}/classify")["properties"]["labels"]["items"]
    assert labels["maxLength"] == 200 and "pattern" in labels


def test_metrics_are_text(client: TestClient, document: dict[str, Any]) -> None:
    documented = document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert set(documented) == {"text/plain"}
    served = client.get("/metrics")
    assert served.headers["content-type"].startswith("text/plain")
    assert "vlmc_" in served.text


def test_docs_page_offers_authorize(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert "swagger-ui" in page.text and '"persistAuthorization": true' in page.text
