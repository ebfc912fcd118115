"""Where the dashboard's own files and the vendored third-party assets live, and the URLs the
pages load them from.

The vendored assets are fetched at install time by ``scripts/fetch-ui-assets.sh`` (``make
install``; the Dockerfile's ``ui-assets`` stage) into ``vendor/`` beside this module, one
folder per npm package at its pinned version, holding its licence file.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
STATIC_DIR = PACKAGE_DIR / "static"
VENDOR_DIR = PACKAGE_DIR / "vendor"

STATIC_URL = "/ui/static"
VENDOR_URL = "/ui/vendor"

# The vendored files the pages load (relative to VENDOR_DIR), named once.
SWAGGER_UI_JS = "swagger-ui-dist/swagger-ui-bundle.js"
SWAGGER_UI_CSS = "swagger-ui-dist/swagger-ui.css"
REDOC_JS = "redoc/bundles/redoc.standalone.js"
CHART_JS = "chart.js/dist/chart.umd.min.js"
VENDORED_FILES = (SWAGGER_UI_JS, SWAGGER_UI_CSS, REDOC_JS, CHART_JS)

FETCH_COMMAND = "bash scripts/fetch-ui-assets.sh (run by make install)"


def vendor_url(relative: str) -> str:
    return f"{VENDOR_URL}/{relative}"


def missing_vendored_files() -> list[str]:
    """The vendored files not on disk (empty when the install step fetched them)."""
    return [name for name in VENDORED_FILES if not (VENDOR_DIR / name).is_file()]
