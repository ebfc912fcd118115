"""``python -m service.cli``: the ``vlmc`` command line."""

from service.cli import app

app()
