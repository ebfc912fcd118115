"""The API explorers work offline: /docs (Swagger UI) and /redoc render every operation from
assets the API serves itself (no request leaves the machine), and Authorize takes a key."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlparse

from tests.conftest import ADMIN_KEY
from tests.ui.conftest import Dashboard


def local_only(page: Any, base_url: str) -> list[str]:
    """Collects every request the page makes to a host other than the service's."""
    host = urlparse(base_url).netloc
    elsewhere: list[str] = []
    page.on(
        "request",
        lambda request: (
            elsewhere.append(request.url)
            if urlparse(request.url).netloc not in (host, "")
            and not request.url.startswith(("data:", "blob:"))
            else None
        ),
    )
    return elsewhere


def test_swagger_ui_lists_the_operations_and_authorize_takes_a_key(
    dashboard: Dashboard, page: Any, screenshot: Any
) -> None:
    elsewhere = local_only(page, dashboard.url)
    page.goto(f"{dashboard.url}/docs")
    page.wait_for_selector(".opblock")
    document = dashboard.api.get("/openapi.json").json()
    operations = sum(len(methods) for methods in document["paths"].values())
    assert page.locator(".opblock").count() == operations
    screenshot(page, "docs")

    # Without a key, a call answers 401; after Authorize, the same call answers 200.
    page.click("button.authorize")
    page.fill(".modal-ux input[type=text], .modal-ux input[type=password]", ADMIN_KEY)
    page.click(".modal-ux button.authorize")
    page.click(".modal-ux button.close-modal")
    operation = page.locator("#operations-models-list_models")
    operation.locator(".opblock-summary").click()
    operation.locator("button.try-out__btn").click()
    operation.locator("button.execute").click()
    status = operation.locator(".live-responses-table tbody .response-col_status").first
    assert status.inner_text().strip() == "200"
    body = operation.locator(".live-responses-table tbody .microlight").first.inner_text()
    assert [model["name"] for model in json.loads(body)] == ["tiny"]
    assert not elsewhere, elsewhere


# ReDoc's sidebar credit is an image from its CDN that hides itself when it cannot load: the
# one request to another host, which changes nothing the page shows offline.
REDOC_CREDIT = "https://cdn.redoc.ly/redoc/logo-mini.svg"


def test_redoc_renders_the_reference_offline(
    dashboard: Dashboard, page: Any, allow_console_errors: Any
) -> None:
    allow_console_errors("net::ERR_NAME_NOT_RESOLVED")
    elsewhere = local_only(page, dashboard.url)
    page.goto(f"{dashboard.url}/redoc")
    page.wait_for_selector("[data-section-id='operation/create_correction']")
    document = dashboard.api.get("/openapi.json").json()
    operations = sum(len(methods) for methods in document["paths"].values())
    assert page.locator("[data-section-id^='operation/']").count() == operations
    assert set(elsewhere) <= {REDOC_CREDIT}, elsewhere


def test_the_pages_say_when_their_assets_are_not_installed(
    dashboard: Dashboard, monkeypatch: Any
) -> None:
    from service.webui import assets

    monkeypatch.setattr(assets, "VENDOR_DIR", assets.VENDOR_DIR / "missing")
    for path in ("/docs", "/redoc", "/ui/"):
        response = dashboard.api.get(path)
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "ui_assets_missing"
        assert "scripts/fetch-ui-assets.sh" in response.json()["error"]["message"]
