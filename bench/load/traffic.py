"""Open-loop HTTP load with a deliberately cheap client.

Requests start on a fixed schedule whatever the server's latency (a slow server shows up as
latency and errors, not as a politely lowered rate), and latency is measured from the
scheduled start, so time spent waiting for a free connection counts (no coordinated
omission). The client speaks minimal HTTP/1.1 over keep-alive asyncio streams with
pre-serialised requests: on a small machine a full HTTP library would be the bottleneck, not
the server under test.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import statistics
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit


def png_base64(image: Any) -> str:
    """A PIL image as base64 PNG, the way JSON request bodies carry images."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


@dataclass(frozen=True)
class Request:
    """One endpoint's request, serialised once."""

    name: str
    method: str
    path: str
    json_body: Any = None

    def to_bytes(self, host: str, headers: dict[str, str]) -> bytes:
        body = b"" if self.json_body is None else json.dumps(self.json_body).encode()
        lines = [f"{self.method} {self.path} HTTP/1.1", f"Host: {host}"]
        lines += [f"{key}: {value}" for key, value in headers.items()]
        if self.json_body is not None:
            lines.append("Content-Type: application/json")
        lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@dataclass
class EndpointStats:
    latencies_ms: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies_ms)

        def quantile(q: float) -> float | None:
            if not ordered:
                return None
            return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

        return {
            "ok": len(ordered),
            "errors": sum(self.errors.values()),
            "error_kinds": dict(self.errors),
            "p50_ms": quantile(0.50),
            "p99_ms": quantile(0.99),
            "max_ms": round(ordered[-1], 2) if ordered else None,
            "mean_ms": round(statistics.fmean(ordered), 2) if ordered else None,
        }


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def exchange(self, payload: bytes) -> int:
        """Send one request, read the whole response; returns the status code."""
        self.writer.write(payload)
        await self.writer.drain()
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length = 0
        for line in lines[1:]:
            key, _, value = line.partition(":")
            if key.strip().lower() == "content-length":
                length = int(value.strip())
        await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


class _Pool:
    """Keep-alive connections, opened on demand up to ``limit``."""

    def __init__(self, base_url: str, limit: int) -> None:
        url = urlsplit(base_url)
        self._host, self._port = url.hostname or "127.0.0.1", url.port or 80
        # The Host header of the requests sent through this pool.
        self.host = f"{self._host}:{self._port}"
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(limit)

    async def request(self, payload: bytes) -> int:
        async with self._slots:
            if self._idle:
                try:
                    return await self._exchange(self._idle.pop(), payload)
                except (asyncio.IncompleteReadError, ConnectionResetError) as error:
                    if isinstance(error, asyncio.IncompleteReadError) and error.partial:
                        raise
                    # The server closed this idle keep-alive connection as we reused it (its
                    # keep-alive timeout): nothing was answered, so send again on a fresh
                    # connection, as HTTP clients do.
            return await self._exchange(await self._open(), payload)

    async def _exchange(self, connection: _Connection, payload: bytes) -> int:
        try:
            status = await connection.exchange(payload)
        except BaseException:
            connection.close()  # state unknown (timeout, reset): never reuse it
            raise
        self._idle.append(connection)
        return status

    async def _open(self) -> _Connection:
        reader, writer = await asyncio.open_connection(self._host, self._port)
        return _Connection(reader, writer)

    def close(self) -> None:
        for connection in self._idle:
            connection.close()


async def _one(
    pool: _Pool, payload: bytes, stats: EndpointStats, scheduled: float, timeout: float
) -> None:
    try:
        status = await asyncio.wait_for(pool.request(payload), timeout)
    except TimeoutError:
        stats.error("timeout")
        return
    except (OSError, asyncio.IncompleteReadError, ValueError) as error:
        stats.error(type(error).__name__)
        return
    if status >= 400:
        stats.error(f"http_{status}")
    else:
        stats.latencies_ms.append((time.perf_counter() - scheduled) * 1000)


async def _drive(
    base_url: str,
    headers: dict[str, str],
    mix: list[Request],
    rate: float,
    duration: float,
    timeout: float,
    connections: int,
) -> tuple[dict[str, EndpointStats], float]:
    pool = _Pool(base_url, connections)
    payloads = [request.to_bytes(pool.host, headers) for request in mix]
    stats = {request.name: EndpointStats() for request in mix}
    tasks = []
    start = time.perf_counter()
    for index in range(int(rate * duration)):
        scheduled = start + index / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        request = mix[index % len(mix)]
        tasks.append(
            asyncio.create_task(
                _one(pool, payloads[index % len(mix)], stats[request.name], scheduled, timeout)
            )
        )
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    pool.close()
    return stats, elapsed


def run_load(
    base_url: str,
    headers: dict[str, str],
    mix: list[Request],
    rate: float,
    duration: float,
    timeout: float = 10.0,
    connections: int = 64,
) -> dict[str, Any]:
    """Send ``rate`` requests/s for ``duration`` s, cycling through ``mix``.

    Per endpoint: p50/p99/max latency of successful requests (from their scheduled start) and
    error counts (4xx/5xx, transport errors, and requests not answered within ``timeout``).
    """
    stats, elapsed = asyncio.run(
        _drive(base_url, headers, mix, rate, duration, timeout, connections)
    )
    sent = int(rate * duration)
    return {
        "target_rate": rate,
        "duration_s": duration,
        "requests": sent,
        "wall_s": round(elapsed, 2),
        "connections": connections,
        "timeout_s": timeout,
        "endpoints": {name: endpoint.summary() for name, endpoint in stats.items()},
    }


async def _client_loop(
    pool: _Pool, payload: bytes, stats: EndpointStats, until: float, timeout: float
) -> None:
    while time.perf_counter() < until:
        await _one(pool, payload, stats, time.perf_counter(), timeout)


async def _drive_clients(
    base_url: str,
    headers: dict[str, str],
    request: Request,
    clients: int,
    duration: float,
    timeout: float,
) -> tuple[EndpointStats, float]:
    pool = _Pool(base_url, clients)
    payload = request.to_bytes(pool.host, headers)
    stats = EndpointStats()
    start = time.perf_counter()
    until = start + duration
    await asyncio.gather(
        *(_client_loop(pool, payload, stats, until, timeout) for _ in range(clients))
    )
    elapsed = time.perf_counter() - start
    pool.close()
    return stats, elapsed


def run_clients(
    base_url: str,
    headers: dict[str, str],
    request: Request,
    clients: int,
    duration: float,
    timeout: float = 10.0,
) -> dict[str, Any]:
    """Closed-loop load: ``clients`` clients, each sending ``request`` again as soon as its
    previous one is answered, for ``duration`` s. Throughput of answered requests, p50/p99 of
    their latency, and errors."""
    stats, elapsed = asyncio.run(
        _drive_clients(base_url, headers, request, clients, duration, timeout)
    )
    summary = stats.summary()
    return {
        "clients": clients,
        "wall_s": round(elapsed, 2),
        "requests_per_s": round(summary["ok"] / elapsed, 1),
        **summary,
    }
