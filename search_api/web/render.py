"""Jinja2 environment of the web interface and the one ``render`` function pages use."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from search_api.web import format as fmt
from search_api.web import messages
from search_api.web.session import ROLE_LABELS

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
templates.env.filters.update(fmt.filters())
# A missing value (a CPTS without address…) prints nothing: an operator must never read Python's "None".
templates.env.finalize = lambda value: "" if value is None else value
templates.env.filters["tojson_attr"] = lambda value: json.dumps(value, ensure_ascii=False)
# A slot id (vendor text: ':' '/' '|' …) as a safe, stable DOM id: the booked slot's answer removes it by id.
templates.env.filters["dom_id"] = lambda value: hashlib.sha256(str(value).encode()).hexdigest()[:16]
templates.env.globals.update(MODE_LABELS=fmt.MODE_LABELS, TYPE_LABELS=fmt.TYPE_LABELS, KIND_LABELS=fmt.KIND_LABELS,
                             SECTOR_LABELS=fmt.SECTOR_LABELS, STATUS_LABELS=fmt.STATUS_LABELS,
                             LRM_DELIVERY_LABELS=fmt.LRM_DELIVERY_LABELS, DECLARATION_LABELS=fmt.DECLARATION_LABELS,
                             SOURCE_LABELS=fmt.SOURCE_LABELS, BEYOND_TITLE=fmt.BEYOND_TITLE, with_q=fmt.with_q,
                             HARVEST_ALERT_LABELS=fmt.HARVEST_ALERT_LABELS,
                             harvest_diagnostic=messages.harvest_diagnostic,
                             ROLE_LABELS={r.value: label for r, label in ROLE_LABELS.items()})


def render(request: Request, name: str, *, status_code: int = 200, **values: Any) -> Response:
    """Render ``name`` with the page values, the settings the layout needs and the CSP header."""
    settings = request.app.state.settings
    values.setdefault("user", None)
    response = templates.TemplateResponse(request, name, {"settings": settings, "uuid": _uuid, **values},
                                          status_code=status_code)
    tiles = ""
    if settings.web_tile_url:
        from urllib.parse import urlsplit

        parts = urlsplit(settings.web_tile_url.replace("{s}", "a"))
        host = parts.netloc.replace("a.", "*.", 1) if "{s}" in settings.web_tile_url else parts.netloc
        tiles = f" {parts.scheme}://{host}"
    # Scripts only from our own static files; tiles (if any) from the configured server.
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        f"img-src 'self' data:{tiles}; connect-src 'self'; frame-ancestors 'none'; form-action 'self'")
    return response


def _uuid() -> str:
    import uuid

    return uuid.uuid4().hex
