"""Every error the API answers is in its OpenAPI document: a response hook for test clients.

The document lists, per operation and status, the codes the operation can answer
(``service/api/openapi.py``, derived from the code that raises them). ``check_responses``
makes a test client fail the test at the first error response whose status or code the
document does not list for the operation that answered, so every error path the API tests
drive checks the derivation.
"""

from __future__ import annotations

import re
from typing import Any

import httpx

from service.api.openapi import ERROR_REF


class ErrorContract:
    """The documented error statuses and codes of every operation of an OpenAPI document."""

    def __init__(self, document: dict[str, Any]) -> None:
        self._operations: list[tuple[str, re.Pattern[str], dict[str, Any]]] = []
        for template, operations in document["paths"].items():
            pattern = re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$")
            for method, operation in operations.items():
                self._operations.append((method.upper(), pattern, operation))

    def violation(self, method: str, path: str, status: int, body: Any) -> str | None:
        """Why this error response breaks the document (None: it does not, or no operation
        matches: unknown paths and methods are the router's, not an operation's)."""
        matches = [op for m, pattern, op in self._operations if m == method and pattern.match(path)]
        if not matches:
            return None
        # A literal segment beats a parameter (``/v1/storage/gc`` vs ``/v1/storage/{x}``).
        operation = matches[0]
        label = f"{method} {path} -> {status}"
        response = operation["responses"].get(str(status))
        if response is None:
            return f"{label}: status not documented"
        schema = response.get("content", {}).get("application/json", {}).get("schema", {})
        if ERROR_REF not in schema.get("allOf", []):
            return None  # the operation's own body (/readyz)
        codes = schema["allOf"][1]["properties"]["error"]["properties"]["code"]["enum"]
        code = (body or {}).get("error", {}).get("code") if isinstance(body, dict) else None
        if code not in codes:
            return f"{label}: code {code!r} not documented (documented: {', '.join(codes)})"
        return None


def check_responses(client: httpx.Client, document: dict[str, Any]) -> None:
    """Make ``client`` raise AssertionError on an error response the document does not list."""
    contract = ErrorContract(document)

    def check(response: httpx.Response) -> None:
        if response.status_code < 400 or response.status_code >= 500:
            return
        response.read()
        try:
            body = response.json()
        except ValueError:
            body = None
        request = response.request
        problem = contract.violation(request.method, request.url.path, response.status_code, body)
        assert problem is None, problem

    client.event_hooks["response"] = [*client.event_hooks["response"], check]
