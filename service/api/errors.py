"""One error body everywhere: ``{"error": {"code": ..., "message": ..., "details"?: ...}}``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException

from service.errors import ServiceError
from service.modelling.snapshots import SnapshotIntegrityError
from service.storage.blobs import BlobCorruptedError, BlobNotFoundError
from service.validation import INVALID_CHARACTERS

logger = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
}


# What a request that fails validation is answered: a validation-error type with a code (and
# status) of its own gets the same answer as the check that raises it outside pydantic (the
# first match wins); anything else is VALIDATION_ERROR. The OpenAPI document lists these.
VALIDATION_ERROR = (422, "validation_error")
VALIDATION_ANSWERS = {
    "image_too_large": (413, "image_too_large"),
    INVALID_CHARACTERS: (422, INVALID_CHARACTERS),
}
INVALID_JSON = (422, "invalid_json")
DATABASE_UNAVAILABLE = (503, "database_unavailable")
DATABASE_BUSY = (503, "database_busy")
FASTAPI_BODY_PARSE_ERROR = "There was an error parsing the body"


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at the request's path (for ``Allow``)."""
    path = request.scope["path"]
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.routes):
        regex = getattr(route, "path_regex", None)
        if regex is not None and regex.match(path):
            methods.update(route.methods or ())
    return sorted(methods)


def error_response(
    status_code: int,
    code: str,
    message: str,
    details: Any = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """The JSON error response every failure uses."""
    body: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status_code, headers=headers)


def _validation_message(errors: list[Any]) -> str:
    parts = []
    for error in errors[:5]:
        location = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
        parts.append(f"{location or 'body'}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that turn every exception into the error body."""

    @app.exception_handler(ServiceError)
    async def _service_error(_: Request, error: ServiceError) -> JSONResponse:
        return error_response(
            error.status_code, error.code, error.message, error.details, error.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, error: RequestValidationError) -> JSONResponse:
        for item in error.errors():
            if item.get("type") == "json_invalid":
                where = item.get("loc", ("body", "?"))[-1]
                reason = (item.get("ctx") or {}).get("error", "JSON decode error")
                return error_response(
                    *INVALID_JSON, f"the body is not valid JSON: {reason} (character {where})"
                )
        # Never echo ``input``: it can be large, and it is the caller's own data anyway.
        errors = [
            {key: value for key, value in item.items() if key in ("loc", "msg", "type")}
            for item in error.errors()
        ]
        types = {item.get("type") for item in errors}
        status, code = next(
            (answer for kind, answer in VALIDATION_ANSWERS.items() if kind in types),
            VALIDATION_ERROR,
        )
        return error_response(status, code, _validation_message(errors), errors)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, error: HTTPException) -> JSONResponse:
        if error.status_code == 400 and error.detail == FASTAPI_BODY_PARSE_ERROR:
            # FastAPI's answer to a JSON body that is not UTF-8: the same as any bad JSON.
            return error_response(*INVALID_JSON, "the body is not valid JSON (UTF-8)")
        code = _HTTP_CODES.get(error.status_code, f"http_{error.status_code}")
        headers = dict(error.headers) if error.headers else None
        if error.status_code == 405:
            # Starlette names the methods of the first route that matched the path only.
            headers = {**(headers or {}), "Allow": ", ".join(allowed_methods(request))}
        return error_response(error.status_code, code, str(error.detail), headers=headers)

    @app.exception_handler(OperationalError)
    async def _database_down(_: Request, error: OperationalError) -> JSONResponse:
        logger.warning("database unavailable: %s", error)
        return error_response(*DATABASE_UNAVAILABLE, "the database is unavailable; retry")

    @app.exception_handler(PoolTimeoutError)
    async def _database_busy(_: Request, error: PoolTimeoutError) -> JSONResponse:
        logger.warning("database pool exhausted: %s", error)
        return error_response(*DATABASE_BUSY, "no database connection free; retry")

    @app.exception_handler(DBAPIError)
    async def _database_error(_: Request, error: DBAPIError) -> JSONResponse:
        if error.connection_invalidated:
            return error_response(*DATABASE_UNAVAILABLE, "the database connection dropped")
        logger.exception("database error", exc_info=error)
        return error_response(500, "database_error", "unexpected database error")

    @app.exception_handler(BlobNotFoundError)
    @app.exception_handler(BlobCorruptedError)
    @app.exception_handler(SnapshotIntegrityError)
    async def _integrity_error(_: Request, error: Exception) -> JSONResponse:
        logger.error("stored data failed an integrity check: %s", error)
        return error_response(500, "stored_data_integrity", str(error))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, error: Exception) -> JSONResponse:
        logger.exception("unhandled error", exc_info=error)
        return error_response(500, "internal_error", "unexpected server error")
