"""Cross-cutting HTTP concerns: request id, latency metrics, security headers, CORS."""

from __future__ import annotations

import time

from asgi_correlation_id import CorrelationIdMiddleware
from fastapi import FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.middleware.base import BaseHTTPMiddleware

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


class MetricsAndHeadersMiddleware(BaseHTTPMiddleware):
    """Observe latency per route *template* (bounded label set) and add security headers."""

    async def dispatch(self, request: Request, call_next) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        HTTP_LATENCY.labels(request.method, template, str(response.status_code)).observe(time.perf_counter() - started)
        for header, value in SECURITY_HEADERS.items():
            response.headers.setdefault(header, value)
        if request.url.scheme == "https":
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        return response


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
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
