"""Reading request bodies that come as multipart (files + fields) or JSON (base64 images).

Corrections, eval sets, classify and embed accept both; each domain's ``forms.py`` turns the
:class:`RequestBody` into its own typed input, a FastAPI dependency of its routes, so no router
branches on the encoding. Size limits are checked while reading, so an oversized file is
rejected with 413 before it is held in full.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile

from service.errors import InvalidInput, PayloadTooLarge, ServiceError
from service.settings import Settings

ModelT = TypeVar("ModelT", bound=BaseModel)
UNSUPPORTED_MEDIA_TYPE = (415, "unsupported_media_type")


@dataclass
class RequestBody:
    """A parsed body: multipart ``fields``/``files`` by name, or the decoded ``json`` value."""

    fields: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, list[bytes]] = field(default_factory=dict)
    json: Any = None
    is_json: bool = False

    def file_list(self, name: str) -> list[bytes]:
        """The files of a multipart field (none when absent); 422 ``expected_file`` when the
        field came as text (a text part is not an image)."""
        if name in self.fields:
            raise InvalidInput(
                "expected_file", f"{name}: send files (with a filename), not text fields"
            )
        return self.files.get(name, [])

    def last(self, name: str, default: str | None = None) -> str | None:
        """The last value of a multipart field (``default`` when absent; an empty value is a
        value, validated as any other)."""
        values = self.fields.get(name)
        return values[-1] if values else default


async def read_body(request: Request, max_file_bytes: int, max_parts: int) -> RequestBody:
    """Parse multipart/form-data or application/json; anything else is 415."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        try:
            return RequestBody(json=json.loads(await request.body() or b"null"), is_json=True)
        except ValueError as error:
            raise InvalidInput("invalid_json", f"the body is not valid JSON: {error}") from error
    if content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        body = RequestBody()
        try:
            form = await request.form(max_files=max_parts, max_fields=max_parts)
        except Exception as error:  # python-multipart / starlette raise several kinds
            raise InvalidInput("invalid_multipart", f"cannot parse the form: {error}") from error
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                if value.size is not None and value.size > max_file_bytes:
                    raise PayloadTooLarge(
                        "image_too_large",
                        f"{name}: {value.size} bytes is over the limit of {max_file_bytes} bytes",
                    )
                body.files.setdefault(name, []).append(await value.read())
            else:
                body.fields.setdefault(name, []).append(value)
        return body
    raise ServiceError(
        UNSUPPORTED_MEDIA_TYPE[1],
        "send multipart/form-data (files) or application/json (base64 images)",
        status_code=UNSUPPORTED_MEDIA_TYPE[0],
    )


def require_json_content_type(request: Request) -> None:
    """415 ``unsupported_media_type`` when a route that takes a JSON body model is sent a body
    of another type (FastAPI would validate the raw bytes and answer 422): the same answer as
    the routes that read multipart-or-JSON bodies themselves (``read_body``). An app-wide
    dependency; routes without a body model are left alone."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or route.body_field is None:
        return
    content_type = request.headers.get("content-type")
    if content_type is None:
        has_body = request.headers.get("content-length", "0") != "0" or (
            "transfer-encoding" in request.headers
        )
        if not has_body:
            return  # no body at all: the body model's own rules decide (required or not)
    else:
        subtype = content_type.split(";")[0].strip().lower().split("/")[-1]
        if subtype == "json" or subtype.endswith("+json"):
            return
    raise ServiceError(
        UNSUPPORTED_MEDIA_TYPE[1],
        "send the body as application/json",
        status_code=UNSUPPORTED_MEDIA_TYPE[0],
    )


def decode_base64(value: str, field_name: str) -> bytes:
    """Standard or url-safe base64 (a ``data:...;base64,`` prefix is allowed)."""
    if value.startswith("data:") and "," in value:
        value = value.split(",", 1)[1]
    try:
        cleaned = value.strip().replace("-", "+").replace("_", "/")
        return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)
    except (binascii.Error, ValueError) as error:
        raise InvalidInput("invalid_base64", f"{field_name}: not valid base64") from error


def validate_json(schema: type[ModelT], value: Any) -> ModelT:
    """Validate a JSON body against ``schema``; errors look like FastAPI's own 422s."""
    try:
        return schema.model_validate(value)
    except ValidationError as error:
        raise RequestValidationError(error.errors(include_url=False)) from error


def parse_json_field(body: RequestBody, name: str) -> Any:
    """A multipart field that carries JSON (e.g. ``hyperparameters``); None when absent."""
    raw = body.last(name)
    if raw is None or raw.strip() == "":
        return None
    try:
        return json.loads(raw)
    except ValueError as error:
        raise InvalidInput(f"invalid_{name}_json", f"{name}: not valid JSON ({error})") from error


def body_dependency(
    max_parts: Callable[[Settings], int],
) -> Callable[[Request], Awaitable[RequestBody]]:
    """A FastAPI dependency reading the body with the upload limits of the app's settings;
    ``max_parts`` bounds the number of multipart parts for the endpoint."""

    async def dependency(request: Request) -> RequestBody:
        settings: Settings = request.app.state.runtime.settings
        return await read_body(request, settings.max_upload_bytes, max_parts(settings))

    return dependency
