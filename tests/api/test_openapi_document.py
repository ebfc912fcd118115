"""The served OpenAPI document itself: references resolve, the bearer scheme is declared (the
Authorize button of /docs), error responses use the real error body, multipart bodies mark
their required fields, and /metrics is text."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

REPO_ROOT = Path(__file__).resolve().parents[2]


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


def _codes(response: dict[str, Any]) -> list[str]:
    schema = response["content"]["application/json"]["schema"]
    return list(schema["allOf"][1]["properties"]["error"]["properties"]["code"]["enum"])


def _documented(document: dict[str, Any], method: str, path: str) -> dict[int, set[str]]:
    responses = document["paths"][path][method.lower()]["responses"]
    return {
        int(status): set(_codes(response))
        for status, response in responses.items()
        if int(status) >= 400 and path != "/readyz"
    }


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
                schema = response["content"]["application/json"]["schema"]
                assert schema["allOf"][0] == error_ref
                assert _codes(response), (method, path, status)
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
    assert "409" not in paths["/v1/models/{model_id}"]["get"]["responses"]
    assert {"413", "415"} <= set(paths["/v1/models/{model_id}/corrections"]["post"]["responses"])
    links = paths["/v1/models/{model_id}/corrections"]["post"]["responses"]["202"]["links"]
    assert links["GetJob"]["operationId"] == "read_job"
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


def test_each_operation_lists_the_codes_its_code_raises(document: dict[str, Any]) -> None:
    """Read from the raising code (service/api/raised_codes.py): through the endpoint, the
    services it calls, parameters that carry a code, and the method catalogue's own errors."""
    classify = _documented(document, "POST", "/v1/models/{model_id}/classify")
    assert {"duplicate_label", "too_many_images", "image_not_an_image"} <= classify[422]
    assert classify[413] == {"image_too_large", "request_too_large"}
    assert {"server_busy", "no_active_version", "server_overloaded"} <= classify[503]
    assert "too_many_texts" in _documented(document, "POST", "/v1/models/{model_id}/embed")[422]
    corrections = _documented(document, "POST", "/v1/models/{model_id}/corrections")
    assert corrections[409] >= {"idempotency_key_reused"}
    # From the method catalogue (HyperparameterError re-raised as a 422 with its own code).
    assert {"unknown_method", "invalid_hyperparameter", "empty_label"} <= corrections[422]
    assert "invalid_hyperparameters_json" in corrections[422]  # f"invalid_{name}_json"
    keys = _documented(document, "POST", "/v1/api-keys")
    assert {"admin_key_restricted", "expiry_in_past", "unknown_model"} <= keys[422]
    assert keys[401] == {"missing_api_key", "invalid_api_key", "expired_api_key"}
    assert keys[403] == {"insufficient_scope"}
    read = _documented(document, "GET", "/v1/models/{model_id}")
    assert 403 not in read and read[404] == {"model_not_found"}
    assert "invalid_characters" not in read[422]  # path identifiers only
    # A pinned version_id that cannot answer.
    assert classify[409] == {"version_archived", "version_failed", "version_not_ready"}
    rollback = _documented(document, "POST", "/v1/models/{model_id}/rollback")
    assert {"version_already_active", "version_archived"} <= rollback[409]


# Raised inside the worker's job transaction (they end a job with this error_code), never an
# HTTP answer.
_WORKER_ONLY_CODES = {"parent_archived", "parent_not_ready"}
_SERVICE_ERRORS = {
    "ServiceError",
    "NotFound",
    "Conflict",
    "InvalidInput",
    "PayloadTooLarge",
    "Unavailable",
    "HyperparameterError",
}


# The browser pages (/docs, /redoc, /ui) are not API operations: their one code,
# ui_assets_missing, is checked by tests/ui/test_explorers.py.
PAGES = REPO_ROOT / "service" / "webui"


def _codes_written_in(package: Path) -> dict[str, str]:
    """Every literal code a ServiceError (or the catalogue's HyperparameterError) is built
    with anywhere in ``package``: code -> where."""
    written = {}
    for source in sorted(package.rglob("*.py")):
        if PAGES in source.parents:
            continue
        for node in ast.walk(ast.parse(source.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in _SERVICE_ERRORS
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                written.setdefault(node.args[0].value, f"{source}:{node.lineno}")
    return written


def test_every_code_the_service_raises_is_documented_somewhere(document: dict[str, Any]) -> None:
    documented = set()
    for method, path, _operation in _operations(document):
        for codes in _documented(document, method, path).values():
            documented |= codes
    written = {
        **_codes_written_in(REPO_ROOT / "service"),
        **_codes_written_in(REPO_ROOT / "catalogue"),
    }
    assert len(written) > 60
    missing = {code: where for code, where in written.items() if code not in documented}
    assert set(missing) == _WORKER_ONLY_CODES, missing


def _unbounded(document: dict[str, Any], node: Any, where: str, seen: frozenset[str]) -> list[str]:
    """Strings without maxLength, numbers without both bounds, lists without maxItems, maps
    without maxProperties, in a request schema (references followed once)."""
    if isinstance(node, list):
        return [found for item in node for found in _unbounded(document, item, where, seen)]
    if not isinstance(node, dict):
        return []
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        if name in seen:
            return []
        schema = document["components"]["schemas"][name]
        return _unbounded(document, schema, f"{where}->{name}", seen | {name})
    found = []
    kind = node.get("type")
    if kind == "string" and not {"maxLength", "enum", "const", "format"} & set(node):
        found.append(f"{where}: string without maxLength")
    keys = set(node)
    bounded_above = bool({"maximum", "exclusiveMaximum"} & keys)
    bounded_below = bool({"minimum", "exclusiveMinimum"} & keys)
    if kind in ("integer", "number") and not (bounded_above and bounded_below):
        found.append(f"{where}: {kind} without both bounds")
    if kind == "array" and "maxItems" not in node:
        found.append(f"{where}: list without maxItems")
    open_map = kind == "object" and node.get("additionalProperties", False) is not False
    if open_map and "maxProperties" not in node:
        found.append(f"{where}: map without maxProperties")
    for name, child in node.get("properties", {}).items():
        found += _unbounded(document, child, f"{where}.{name}", seen)
    for key in ("items", "anyOf", "oneOf", "allOf", "additionalProperties"):
        if key in node:
            found += _unbounded(document, node[key], f"{where}[{key}]", seen)
    return found


def test_every_request_string_number_and_list_is_bounded(document: dict[str, Any]) -> None:
    found = []
    for method, path, operation in _operations(document):
        for parameter in operation.get("parameters", []):
            label = f"{method} {path} ?{parameter['name']}"
            found += _unbounded(document, parameter["schema"], label, frozenset())
        for media_type, content in operation.get("requestBody", {}).get("content", {}).items():
            label = f"{method} {path} <{media_type}>"
            found += _unbounded(document, content["schema"], label, frozenset())
    assert found == []
