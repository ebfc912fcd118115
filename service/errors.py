"""The service's error type: every failure a client sees has an HTTP status and a stable code.

Services raise :class:`ServiceError` (or a subclass); ``service/api/errors.py`` turns it into
``{"error": {"code": ..., "message": ...}}``. The worker reuses the same codes for job errors.
"""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """A failure with an HTTP status, a machine-readable code and a human message."""

    status_code = 400

    def __init__(
        self,
        code: str,
        message: str,
        status_code: int | None = None,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        if status_code is not None:
            self.status_code = status_code
        self.details = details
        self.headers = headers


class NotFound(ServiceError):
    """An unknown model, version, job, eval set or API key (404)."""

    status_code = 404


class Conflict(ServiceError):
    """The request contradicts the current state (409)."""

    status_code = 409


class Gone(ServiceError):
    """The resource existed and is no longer kept (410): an answer past its retention."""

    status_code = 410


class InvalidInput(ServiceError):
    """The request is well-formed but its content is not acceptable (422)."""

    status_code = 422


class PayloadTooLarge(ServiceError):
    """An upload over a size limit (413)."""

    status_code = 413


class Unavailable(ServiceError):
    """A dependency (database, broker, model weights) is unavailable right now (503)."""

    status_code = 503
