"""The app under uvicorn on a free loopback port, in a thread: real HTTP for the tests that
need a server (streams, browsers)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from bench.load.processes import free_port
from service.app import create_app
from service.settings import Settings


@dataclass
class LiveServer:
    """The app served by uvicorn on a loopback port (real HTTP), and its runtime."""

    url: str
    app: Any

    @property
    def runtime(self) -> Any:
        return self.app.state.runtime


@contextmanager
def serve_app(settings: Settings) -> Iterator[LiveServer]:
    """``create_app(settings)`` under uvicorn in a thread, until the block ends."""
    import uvicorn

    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield LiveServer(url=f"http://127.0.0.1:{port}", app=app)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
