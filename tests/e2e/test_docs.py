"""``/docs`` in a real Chromium (issue 15, point 9): Swagger UI renders the API's operations from the
platform's own files, every request stays on the platform's origin and the page's CSP blocks nothing
Swagger UI needs."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.integration


def test_swagger_ui_runs_from_local_assets(base_url, new_page):
    page = new_page()
    requested: list[str] = []
    console: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.on("console", lambda message: console.append(message.text))
    page.goto(f"{base_url}/docs")
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible()
    expect(page.locator(".swagger-ui .opblock-summary-path", has_text="/v1/search").first).to_be_visible()
    origin = urlsplit(base_url).netloc
    foreign = [url for url in requested if not url.startswith("data:") and urlsplit(url).netloc != origin]
    assert not foreign, foreign
    assert f"{base_url}/static/vendor/swagger-ui/swagger-ui-bundle.js" in requested
    assert not [m for m in console if "Content Security Policy" in m], console
