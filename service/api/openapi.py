"""The OpenAPI document as the contract: every status an operation can answer, every code it
can answer under each, and the body it really sends.

FastAPI documents what it can see in a signature: the success response and a 422 in its own
``{"detail": [...]}`` shape. This service answers every failure with
``{"error": {"code", "message", "details"?}}`` (``service/api/errors.py``). ``install_openapi``
completes each operation with one response per error status, whose schema restricts
``error.code`` to the codes the operation can answer there and whose description lists them:

- the codes its endpoint and its dependencies (authentication, scopes, body parsing) raise,
  read from the code that raises them (``service/api/raised_codes.py``), so a new
  ``raise InvalidInput("some_code", ...)`` is documented wherever it can be reached;
- the answers of the layers around every handler, where they apply: request size (413) on
  body methods, media type (415) and bad JSON (422) where there is a body, validation (422)
  where there is a body or parameters, overload and database outages (503) on ``/v1``.

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

from service.api.errors import (
    DATABASE_BUSY,
    DATABASE_UNAVAILABLE,
    INVALID_JSON,
    VALIDATION_ANSWERS,
    VALIDATION_ERROR,
)
from service.api.load_shedding import SERVER_OVERLOADED
from service.api.query_parameters import (
    UNKNOWN_QUERY_PARAMETER,
    refuse_unknown_query_parameters,
)
from service.api.raised_codes import codes_of
from service.api.request_metrics import BODY_METHODS, REQUEST_TOO_LARGE
from service.api.uploads import UNSUPPORTED_MEDIA_TYPE, require_json_content_type
from service.validation import MAX_ITEMS_PER_REQUEST, text_pattern


class ErrorDetail(BaseModel):
    code: str = Field(description="stable machine-readable code, e.g. model_not_found")
    message: str = Field(description="what went wrong, for people")
    details: Any = Field(
        default=None, description="optional structure: validation errors, retry_after_s"
    )


class ErrorResponse(BaseModel):
    """The body of every error response."""

    error: ErrorDetail


ERROR_REF = {"$ref": "#/components/schemas/ErrorResponse"}
_DESCRIPTIONS = {
    400: "bad request",
    401: "no valid API key",
    403: "the key may not do this",
    404: "not found (or not visible to the key)",
    409: "the request contradicts the current state",
    410: "no longer kept",
    413: "too large",
    415: "a media type the operation does not take",
    422: "the request's content is not acceptable",
    503: "unavailable right now; retry (Retry-After where known)",
}
_JSON_BODY_MODELS: dict[str, type[BaseModel]] = {}

IMAGE_FILES: dict[str, Any] = {
    "type": "array",
    "items": {"type": "string", "format": "binary", "minLength": 1},
    "minItems": 1,
    "maxItems": MAX_ITEMS_PER_REQUEST,
}


def text_field(
    max_length: int, multiline: bool = False, nonblank: bool = False, **extra: Any
) -> dict[str, Any]:
    """A multipart text field: bounded, free of control characters, and (``nonblank``) with
    something besides white space."""
    pattern = text_pattern(multiline, nonblank)
    return {"type": "string", "maxLength": max_length, "pattern": pattern, **extra}


def text_fields(max_length: int, multiline: bool = False, nonblank: bool = False) -> dict[str, Any]:
    """A repeated multipart text field (one value per image or per candidate)."""
    return {
        "type": "array",
        "items": text_field(max_length, multiline, nonblank),
        "minItems": 1,
        "maxItems": MAX_ITEMS_PER_REQUEST,
    }


def body_docs(
    multipart_properties: dict[str, Any],
    required: list[str],
    json_model: type[BaseModel],
    multipart_any_of: list[dict[str, Any]] | None = None,
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
                        **({"anyOf": multipart_any_of} if multipart_any_of else {}),
                    }
                },
                "application/json": {
                    "schema": {"$ref": f"#/components/schemas/{json_model.__name__}"}
                },
            },
        }
    }


def _dependants(dependant: Dependant) -> Iterator[Dependant]:
    for sub in dependant.dependencies:
        yield sub
        yield from _dependants(sub)


def _generic_codes(route: RouteContext, operation: dict[str, Any]) -> set[tuple[int, str]]:
    """What the layers around every handler answer (middleware, body parsing, validation,
    database outages), where they apply to this operation."""
    codes: set[tuple[int, str]] = {UNKNOWN_QUERY_PARAMETER}
    path = route.path_format or ""
    body = operation.get("requestBody")
    if body is not None or (route.methods or set()) & BODY_METHODS:
        codes.add(REQUEST_TOO_LARGE)
    if body is not None or operation.get("parameters"):
        codes.add(VALIDATION_ERROR)
    if body is not None:
        codes |= {UNSUPPORTED_MEDIA_TYPE, INVALID_JSON}
        # Text checks of body fields (parameters are identifiers and numbers).
        codes |= {answer for answer in VALIDATION_ANSWERS.values() if answer[0] == 422}
    if path.startswith("/v1/"):
        codes |= {SERVER_OVERLOADED, DATABASE_UNAVAILABLE, DATABASE_BUSY}
    return codes


def operation_error_codes(route: RouteContext, operation: dict[str, Any]) -> dict[int, set[str]]:
    """Every 4xx/503 code the operation can answer, by status: what its endpoint and its
    dependencies raise (``service/api/raised_codes.py``) plus the generic answers."""
    calls = [route.dependant.call] + [sub.call for sub in _dependants(route.dependant)]
    own = codes_of([call for call in calls if call is not None and call not in _GENERIC_CHECKS])
    by_status: dict[int, set[str]] = {}
    for status, code in own | _generic_codes(route, operation):
        if 400 <= status < 500 or status == 503:
            by_status.setdefault(status, set()).add(code)
    return by_status


# App-wide dependencies whose answers ``_generic_codes`` documents where they apply.
_GENERIC_CHECKS: set[Callable[..., Any]] = {
    require_json_content_type,
    refuse_unknown_query_parameters,
}


def _error_schema(codes: set[str]) -> dict[str, Any]:
    """The error body with ``code`` restricted to ``codes``."""
    return {
        "allOf": [
            ERROR_REF,
            {
                "type": "object",
                "properties": {
                    "error": {
                        "type": "object",
                        "properties": {"code": {"type": "string", "enum": sorted(codes)}},
                    }
                },
            },
        ]
    }


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
            if "422" in responses and "HTTPValidationError" in str(responses["422"]):
                del responses["422"]  # FastAPI's shape; rebuilt below if the operation has any
            for status, codes in operation_error_codes(route, operation).items():
                response = responses.setdefault(str(status), {})
                if "content" in response and status == 503:
                    continue  # a route's own 503 body (/readyz) stays
                response["description"] = f"{_DESCRIPTIONS[status]}: " + ", ".join(sorted(codes))
                response["content"] = {"application/json": {"schema": _error_schema(codes)}}


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
