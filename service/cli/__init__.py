"""The ``vlmc`` command line (entry point ``service.cli:app``; ``python -m service.cli``).

- ``server``: ``migrate`` (the one prestart step), ``serve``, ``worker``, and the processes
  they manage.
- ``commands``: the client commands, over HTTP through ``client.ServiceClient``, to the
  service at the global ``--url`` (``VLMC_URL``) with the global ``--api-key``
  (``VLMC_API_KEY``, or ``ADMIN_API_KEY``).
- ``render``: what the client commands print (tables, summaries, or the API's JSON).
"""

from __future__ import annotations

from typing import Annotated

import typer

from service.cli import commands, server

DEFAULT_URL = "http://127.0.0.1:8000"

app = typer.Typer(cls=commands.ReportingGroup, no_args_is_help=True)
app.add_typer(server.app)
app.add_typer(commands.app)


@app.callback()
def connect(
    ctx: typer.Context,
    url: Annotated[
        str, typer.Option("--url", envvar="VLMC_URL", help="base URL of the service")
    ] = DEFAULT_URL,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key", envvar=["VLMC_API_KEY", "ADMIN_API_KEY"], help="API key (clients)"
        ),
    ] = None,
) -> None:
    """vlm-correct: keep deployed CLIP-style models correct."""
    # A caller may hand in its own client as the context object (commands._service).
    if ctx.obj is None:
        ctx.obj = commands.Connection(url, api_key)
