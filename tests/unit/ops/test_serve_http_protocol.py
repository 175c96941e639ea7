"""``sas serve`` runs the API on uvicorn's httptools parser (C), not its pure-Python h11 default."""

from __future__ import annotations

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from sas_cli.main import API_HTTP_PROTOCOL


async def _app(scope, receive, send):  # pragma: no cover - never called: the configuration is only loaded
    raise AssertionError("not served")


def test_serve_loads_the_httptools_protocol():
    config = uvicorn.Config(_app, http=API_HTTP_PROTOCOL, log_config=None)
    config.load()
    assert config.http_protocol_class is HttpToolsProtocol
