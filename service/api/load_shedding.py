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

EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class LoadSheddingMiddleware:
    """Pure ASGI middleware; the counter lives on the event loop, so it needs no lock."""

    def __init__(self, app: ASGIApp, max_in_flight: int) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self.app = app
        self.max_in_flight = max_in_flight
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.max_in_flight:
            REQUESTS_SHED.inc()
            response = error_response(
                503,
                "server_overloaded",
                f"{self.in_flight} requests are in flight (the limit); retry in 1 s",
                details={"retry_after_s": 1},
                headers={"Retry-After": "1"},
            )
            await response(scope, receive, send)
            return
        self.in_flight += 1
        REQUESTS_IN_FLIGHT.set(self.in_flight)
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
            REQUESTS_IN_FLIGHT.set(self.in_flight)
