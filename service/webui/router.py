"""``/docs``, ``/redoc`` and ``/ui``: pages the API process serves with assets of its own.

Swagger UI and ReDoc load their scripts from ``/ui/vendor`` (pinned npm packages fetched at
install time), not from a CDN as FastAPI's defaults do, so both explorers work on a machine
without internet. None of these routes is an API operation: they stay out of the OpenAPI
document, and need no key (the pages ask for one and send it with every API call).
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from service.errors import Unavailable
from service.webui.assets import (
    FETCH_COMMAND,
    REDOC_JS,
    STATIC_DIR,
    STATIC_URL,
    SWAGGER_UI_CSS,
    SWAGGER_UI_JS,
    VENDOR_DIR,
    VENDOR_URL,
    missing_vendored_files,
    vendor_url,
)

TITLE = "vlm-correct"
# No favicon request to a third-party host (FastAPI's default points at its own site).
FAVICON_URL = f"{STATIC_URL}/favicon.svg"

router = APIRouter(include_in_schema=False)


def require_vendored_assets() -> None:
    """503 ``ui_assets_missing`` when the install step did not fetch the pages' scripts: a
    page without them would be blank, which says nothing."""
    missing = missing_vendored_files()
    if missing:
        raise Unavailable(
            "ui_assets_missing",
            f"the browser assets are not installed ({', '.join(missing)}): run {FETCH_COMMAND}",
        )


@router.get("/docs")
def swagger_ui() -> HTMLResponse:
    require_vendored_assets()
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title=f"{TITLE} - API explorer",
        swagger_js_url=vendor_url(SWAGGER_UI_JS),
        swagger_css_url=vendor_url(SWAGGER_UI_CSS),
        swagger_favicon_url=FAVICON_URL,
        swagger_ui_parameters={"persistAuthorization": True},
    )


@router.get("/redoc")
def redoc() -> HTMLResponse:
    require_vendored_assets()
    return get_redoc_html(
        openapi_url="/openapi.json",
        title=f"{TITLE} - API reference",
        redoc_js_url=vendor_url(REDOC_JS),
        redoc_favicon_url=FAVICON_URL,
        with_google_fonts=False,
    )


@router.get("/")
def root() -> RedirectResponse:
    return RedirectResponse("/ui/")


@router.get("/ui")
def dashboard_without_slash() -> RedirectResponse:
    # The page's relative URLs resolve against /ui/.
    return RedirectResponse("/ui/")


@router.get("/ui/")
def dashboard() -> FileResponse:
    require_vendored_assets()
    return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})


def install_web_ui(app: FastAPI) -> None:
    """Serve the pages (the app is created with FastAPI's CDN-loading explorers turned off)."""
    app.include_router(router)
    app.mount(STATIC_URL, StaticFiles(directory=STATIC_DIR), name="ui-static")
    # check_dir=False: a missing vendor folder answers 404 per file (and the pages say why:
    # 503 ui_assets_missing) instead of stopping the API from starting.
    app.mount(VENDOR_URL, StaticFiles(directory=VENDOR_DIR, check_dir=False), name="ui-vendor")
