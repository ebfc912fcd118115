"""Unknown query parameters are refused, not ignored: ``?limt=5`` (a typo) answers 422
``unknown_query_parameter`` naming it, instead of silently using the default."""

from __future__ import annotations

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from service.errors import InvalidInput

UNKNOWN_QUERY_PARAMETER = (422, "unknown_query_parameter")


def _query_names(dependant: Dependant) -> list[str]:
    names = [param.alias for param in dependant.query_params]
    for sub in dependant.dependencies:
        names += _query_names(sub)
    return names


def refuse_unknown_query_parameters(request: Request) -> None:
    """An app-wide dependency: 422 when the query names a parameter the route does not take."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not request.query_params:
        return
    known = set(_query_names(route.dependant))
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        status, code = UNKNOWN_QUERY_PARAMETER
        takes = ", ".join(sorted(known)) or "none"
        raise InvalidInput(
            code,
            f"unknown query parameter(s): {', '.join(unknown)} (this operation takes: {takes})",
            status_code=status,
        )
