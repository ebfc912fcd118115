"""The OpenAPI document as the contract: every status an operation can answer, with the body
it really sends.

FastAPI documents what it can see in a signature: the success response and a 422 in its own
``{"detail": [...]}`` shape. This service answers every failure with
``{"error": {"code", "message", "details"?}}`` (``service/api/errors.py``), and some statuses
come from places a signature does not show: authentication and scopes (dependencies), the
request-size check (middleware), load shedding and database outages (503). ``install_openapi``
completes each operation from what its route really depends on:

- 401 for every operation behind an API key, 403 where a scope is required;
- 404 wherever a path names a resource (unknown, or not visible to a key restricted to
  other models);
- 413 and 422 where there is a body or parameters to reject; 415 where the route reads
  multipart-or-JSON bodies itself;
- 503 on every ``/v1`` operation (overload, database outage);
- 409 only where a route declares it (``conflict(...)``).

Routes that read their body themselves document it with :func:`body_docs`; the JSON form's
schema is registered under ``#/components/schemas`` so every reference resolves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from pydantic import BaseModel, Field
from pydantic.json_schema import models_json_schema

from service.validation import MULTILINE_PATTERN, SINGLE_LINE_PATTERN


class ErrorDetail(BaseModel):
    code: str = Field(description="stable machine-readable code, e.g. model_not_found")
    message: str = Field(description="what went wrong, for people")
    details: Any = Field(
        default=None, description="optional structure: validation errors, retry_after_s"
    )


class ErrorResponse(BaseModel):
    """The body of every error response."""

    error: ErrorDetail


# Methods whose Content-Length the app checks against the request-size limit (413).
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
ERROR_REF = {"$ref": "#/components/schemas/ErrorResponse"}
_DESCRIPTIONS = {
    401: "missing_api_key, invalid_api_key (unknown or revoked) or expired_api_key",
    403: "insufficient_scope: the key lacks the scope this operation needs",
    404: "not found: the resource does not exist, or the key may not see its model",
    409: "the request contradicts the current state",
    413: "request_too_large (the whole body) or image_too_large (one image)",
    415: "unsupported_media_type: send multipart/form-data or application/json",
    422: "validation_error, invalid_json, invalid_characters or the operation's own code",
    503: "server_overloaded or server_busy (with Retry-After), database_unavailable, database_busy",
}
_JSON_BODY_MODELS: dict[str, type[BaseModel]] = {}

IMAGE_FILES: dict[str, Any] = {"type": "array", "items": {"type": "string", "format": "binary"}}


def text_field(max_length: int, multiline: bool = False, **extra: Any) -> dict[str, Any]:
    """A multipart text field: bounded, and free of control characters."""
    pattern = MULTILINE_PATTERN if multiline else SINGLE_LINE_PATTERN
    return {"type": "string", "maxLength": max_length, "pattern": pattern, **extra}


def text_fields(max_length: int, multiline: bool = False) -> dict[str, Any]:
    """A repeated multipart text field (one value per image or per candidate)."""
    return {"type": "array", "items": text_field(max_length, multiline)}


def conflict(description: str) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route that can answer 409 (``description`` names the codes)."""
    return {409: {"model": ErrorResponse, "description": description}}


def body_docs(
    multipart_properties: dict[str, Any], required: list[str], json_model: type[BaseModel]
) -> dict[str, Any]:
    """``openapi_extra`` documenting an endpoint that takes multipart fields or a JSON model
    (FastAPI cannot infer it: such endpoints read the body themselves)."""
    _JSON_BODY_MODELS[json_model.__name__] = json_model
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": multipart_properties,
                        "required": required,
                    }
                },
                "application/json": {
                    "schema": {"$ref": f"#/components/schemas/{json_model.__name__}"}
                },
            },
        }
    }


# Statuses a dependency answers on its own (authentication 401, a scope check 403), declared
# where the dependency is defined, so the document lists them on every route that uses it.
_DECLARED_STATUSES: dict[Callable[..., Any], tuple[int, ...]] = {}


def declare_statuses(dependency: Callable[..., Any], *statuses: int) -> None:
    """Document ``statuses`` on every route that depends on ``dependency``."""
    _DECLARED_STATUSES[dependency] = statuses


def _dependants(dependant: Dependant) -> Iterator[Dependant]:
    for sub in dependant.dependencies:
        yield sub
        yield from _dependants(sub)


def _statuses(route: RouteContext, operation: dict[str, Any]) -> set[int]:
    calls = [sub.call for sub in _dependants(route.dependant)]
    statuses: set[int] = set()
    for call in calls:
        if call is not None:
            statuses.update(_DECLARED_STATUSES.get(call, ()))
    path = route.path_format or ""
    if "{" in path:
        statuses.add(404)
    body = operation.get("requestBody")
    if body is not None or (route.methods or set()) & BODY_METHODS:
        statuses.add(413)
    if body is not None and "multipart/form-data" in body.get("content", {}):
        statuses.add(415)
    if body is not None or operation.get("parameters"):
        statuses.add(422)
    if path.startswith("/v1/"):
        statuses.add(503)
    return statuses


def _complete(schema: dict[str, Any], app: FastAPI) -> None:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    models: list[type[BaseModel]] = [ErrorResponse, *_JSON_BODY_MODELS.values()]
    _, definitions = models_json_schema(
        [(model, "validation") for model in models], ref_template="#/components/schemas/{model}"
    )
    for name, definition in definitions.get("$defs", {}).items():
        components.setdefault(name, definition)
    # FastAPI's own validation-error shapes are never sent.
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    # Routes as FastAPI itself documents them (included routers carry their prefix here).
    for route in iter_route_contexts(app.routes):
        if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
            continue
        for method in route.methods or ():
            operation = schema["paths"][route.path_format][method.lower()]
            responses = operation.setdefault("responses", {})
            for status in _statuses(route, operation):
                responses.setdefault(str(status), {})
            for status, response in responses.items():
                if not status.isdigit() or int(status) < 400:
                    continue
                if response.get("description") in (None, "", "Validation Error"):
                    response["description"] = _DESCRIPTIONS.get(int(status), "error")
                schema_of = response.get("content", {}).get("application/json", {}).get("schema")
                # A route's own error body (/readyz) stays; FastAPI's 422 shape is replaced.
                if schema_of is None or "HTTPValidationError" in str(schema_of):
                    response["content"] = {"application/json": {"schema": ERROR_REF}}


def install_openapi(app: FastAPI) -> None:
    """Make ``app.openapi()`` (and so ``/openapi.json`` and ``/docs``) the completed document."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            _complete(schema, app)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
