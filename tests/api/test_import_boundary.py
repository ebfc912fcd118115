"""The API process never imports training code (``workers.engine``)."""

from __future__ import annotations

import subprocess
import sys


def test_importing_and_building_the_app_does_not_import_the_engine() -> None:
    # A fresh interpreter: this test process may have imported the engine for other tests.
    code = (
        "import sys\n"
        "from service.app import create_app\n"
        "import service.cli\n"
        "create_app()\n"
        "training = ('workers.engine', 'workers.tasks', 'workers.pipeline')\n"
        "leaked = sorted(m for m in sys.modules if m.startswith(training))\n"
        "assert not leaked, leaked\n"
        "print('clean')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "clean"
