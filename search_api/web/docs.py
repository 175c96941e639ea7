"""``/docs``: Swagger UI from the platform's own static files (no third-party script on the sessions' origin).

FastAPI's default page loads Swagger UI from a CDN, on the origin of the web sessions, without integrity
checks: whoever controls that CDN runs script beside the session cookie. The pinned ``swagger-ui-dist``
(``web/package.json``) is vendored under ``static/vendor/swagger-ui/`` like htmx and Leaflet, the page starts
it from ``static/js/docs.js`` (no inline script), and a strict Content-Security-Policy allows nothing else.
ReDoc (another CDN page) is not served.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)

#: Scripts, styles and the schema from this origin only; Swagger UI sets inline styles and data: images.
DOCS_CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
            "font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>SAS platform API — documentation</title>
  <link rel="stylesheet" href="/static/vendor/swagger-ui/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui" data-openapi="/openapi.json"></div>
  <script src="/static/vendor/swagger-ui/swagger-ui-bundle.js"></script>
  <script src="/static/js/docs.js"></script>
</body>
</html>
"""


@router.get("/docs", response_class=HTMLResponse)
def docs() -> HTMLResponse:
    return HTMLResponse(PAGE, headers={"Content-Security-Policy": DOCS_CSP})
