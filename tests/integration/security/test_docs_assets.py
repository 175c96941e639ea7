"""``/docs`` (issue 15, point 9): Swagger UI is served from the platform's own static files under a strict
CSP; nothing on the page comes from another origin (it loaded from cdn.jsdelivr.net, on the sessions' origin,
without integrity checks). The browser side is checked in Chromium: tests/e2e/test_docs.py."""

from __future__ import annotations

import re


def test_docs_load_only_local_assets_under_a_csp(api):
    page = api.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self';" in csp and "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert "'unsafe-inline'" not in csp.split("script-src", 1)[1].split(";", 1)[0]
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(s.startswith("/") and not s.startswith("//") for s in sources), sources
    assert "<script>" not in page.text.replace(" ", "")                    # no inline script
    for source in sources:
        asset = api.get(source)
        assert asset.status_code == 200 and len(asset.content) > 100, source
    assert api.get("/redoc").status_code == 404                            # another CDN page: not served
    assert api.get("/docs/oauth2-redirect").status_code == 404
    assert api.get("/openapi.json").status_code == 200
