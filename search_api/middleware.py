"""Cross-cutting HTTP concerns: request id, latency metrics, security headers, CORS."""

from __future__ import annotations

import logging
import time

from asgi_correlation_id import CorrelationIdMiddleware
from fastapi import FastAPI, Response
from fastapi.middleware.cors import CORSMiddleware
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sas_core.metrics import HTTP_LATENCY
from sas_core.settings import Settings

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "geolocation=(), camera=(), microphone=()",
    "Cache-Control": "no-store",
}


class MetricsAndHeadersMiddleware:
    """Observe latency per route *template* (bounded label set) and add security headers.

    A plain ASGI middleware: Starlette's ``BaseHTTPMiddleware`` runs the rest of the app in a task and
    pipes the response through a memory stream, which cost a good share of a search's own time."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        https = scope.get("scheme") == "https"
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                for header, value in SECURITY_HEADERS.items():
                    headers.setdefault(header, value)
                if https:
                    headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            # The router put the matched route in the (shared) scope.
            template = getattr(scope.get("route"), "path", None) or "unmatched"
            HTTP_LATENCY.labels(scope["method"], template, str(status)).observe(time.perf_counter() - started)


def install_middleware(app: FastAPI, settings: Settings) -> None:
    """Register middleware (outermost last) and the ``/metrics`` endpoint."""
    app.add_middleware(MetricsAndHeadersMiddleware)
    if settings.cors_allow_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_allow_origins, allow_credentials=False,
            allow_methods=["GET", "POST", "PUT", "DELETE"], allow_headers=["Authorization", "Content-Type",
                                                                           "X-Request-ID", "Idempotency-Key"],
            expose_headers=["X-Request-ID", "Retry-After"], max_age=600,
        )
    app.add_middleware(CorrelationIdMiddleware, header_name="X-Request-ID")

    from fastapi import Depends

    from search_api.auth import Role
    from search_api.deps import roles

    @app.get("/metrics", include_in_schema=False, dependencies=[Depends(roles(Role.ADMIN))])
    def metrics() -> Response:
        """Prometheus exposition (scraped with an admin bearer token)."""
        from search_api.workflow.wiring import refresh_metrics

        try:
            refresh_metrics(app)
        except Exception:  # noqa: BLE001 - the other figures are still worth serving
            logging.getLogger(__name__).exception("could not refresh the figures read from the index (harvest alerts, INT_L02)")
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
