"""Process-wide load shedding: a cap on requests in flight, answered 503 past it.

Past its capacity a server that accepts every request answers all of them late: they queue
for worker threads, clients give up, and the server keeps working on abandoned requests
(bench/results/load-notes.md measured goodput collapsing to a few requests/s at 200 req/s).
With a cap, the requests inside keep their latency and the rest get an immediate 503
``server_overloaded`` with ``Retry-After``, which load balancers and clients can act on.
Health and metrics endpoints are never shed: an overloaded process is still alive.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from service.api.errors import error_response
from service.observability import REQUESTS_IN_FLIGHT, REQUESTS_SHED
from service.slots import BoundedSlots

EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


SERVER_OVERLOADED = (503, "server_overloaded")


class LoadSheddingMiddleware:
    """Pure ASGI middleware around the whole app."""

    def __init__(self, app: ASGIApp, max_in_flight: int) -> None:
        self.app = app
        self.slots = BoundedSlots(max_in_flight, REQUESTS_IN_FLIGHT)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        if not self.slots.try_enter():
            REQUESTS_SHED.inc()
            response = error_response(
                *SERVER_OVERLOADED,
                f"{self.slots.limit} requests are in flight (the limit); retry in 1 s",
                details={"retry_after_s": 1},
                headers={"Retry-After": "1"},
            )
            await response(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.slots.leave()
