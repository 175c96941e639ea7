"""Cross-cutting HTTP concerns: request id, latency metrics, security headers, CORS, body limits."""

from __future__ import annotations

import logging
import time

import orjson
from asgi_correlation_id import CorrelationIdMiddleware
from fastapi import Depends, FastAPI, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sas_core.errors import PayloadTooLarge, SasError
from sas_core.metrics import HTTP_LATENCY
from sas_core.settings import Settings
from search_api.auth import Role
from search_api.deps import AUTHENTICATED_PRINCIPAL, authenticate, bearer_of, client_address, roles
from search_api.errors import sas_error_response
from search_api.fhir_outcome import SAS_CODES, outcome_response
from search_api.workflow.appointments import Issue
from search_api.workflow.wiring import refresh_metrics

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
        response_started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                headers = MutableHeaders(scope=message)
                for header, value in SECURITY_HEADERS.items():
                    headers.setdefault(header, value)
                if https:
                    headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            # An unhandled exception: Starlette's ServerErrorMiddleware, outside every middleware, would
            # answer 500 through the server's own ``send``, without the headers above. Answer it here
            # (same headers as every answer), then let the exception go on to be logged.
            if not response_started:
                for message in _internal_error(scope):
                    await send_with_headers(message)
            raise
        finally:
            # The router put the matched route in the (shared) scope.
            template = getattr(scope.get("route"), "path", None) or "unmatched"
            HTTP_LATENCY.labels(scope["method"], template, str(status)).observe(time.perf_counter() - started)


def _internal_error(scope: Scope) -> list[Message]:
    """The 500 answer of an unhandled exception: an OperationOutcome on ``/fhir``, JSON elsewhere."""
    if _is_fhir(scope["path"]):
        body = orjson.dumps({"resourceType": "OperationOutcome", "issue": [
            {"severity": "fatal", "code": "exception", "diagnostics": "internal error"}]})
        media_type = b"application/fhir+json"
    else:
        body = orjson.dumps({"error": "internal_error", "message": "internal error"})
        media_type = b"application/json"
    return [{"type": "http.response.start", "status": 500,
             "headers": [(b"content-type", media_type), (b"content-length", str(len(body)).encode())]},
            {"type": "http.response.body", "body": body}]


def _is_fhir(path: str) -> bool:
    return path == "/fhir" or path.startswith("/fhir/")


class _BodyTooLarge(Exception):
    """Raised into the app from ``receive`` once a streamed body passes the limit (the 413 is sent)."""


class BodyLimitMiddleware:
    """Bounded request bodies, and credentials checked before a body is read (so that an unauthenticated
    caller cannot make the server hold a large body).

    - the limit of the route (``SAS_MAX_FHIR_BODY_BYTES`` on ``/fhir``, ``SAS_MAX_AGENDA_BODY_BYTES`` on
      ``/v1/agenda``, ``SAS_MAX_BODY_BYTES`` elsewhere): a declared ``Content-Length`` above it is refused
      (413) before the app runs; a chunked body is counted as it streams, 413 once it passes the limit.
      Until the app reads it, the server holds at most its flow-control buffer (64 KiB) of a body;
    - on ``/v1`` a request carrying a body is authenticated (bearer token or API key) here, before the
      route's FastAPI machinery reads and parses the whole body: 401 / 429 without reading it. The
      principal is handed to ``get_principal`` through the scope, so credentials are verified once.
      ``/fhir`` routes identify the vendor before reading the body themselves; web forms are small.

    Refusals carry ``Connection: close``: the server then drops the rest of the body instead of draining
    it. A plain ASGI middleware, like ``MetricsAndHeadersMiddleware``, for the same reason of speed."""

    _BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

    def __init__(self, app: ASGIApp, *, settings: Settings, state=None) -> None:
        self.app = app
        self.state = state
        self.default_limit = settings.max_body_bytes
        self.agenda_limit = settings.max_agenda_body_bytes
        self.fhir_limit = settings.max_fhir_body_bytes

    def limit_for(self, path: str) -> int:
        if _is_fhir(path):
            return self.fhir_limit
        if path.startswith("/v1/agenda/"):
            return self.agenda_limit
        return self.default_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in self._BODY_METHODS:
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        limit = self.limit_for(path)
        headers = Headers(scope=scope)
        declared = _content_length(headers)
        if declared is not None and declared > limit:
            await self._refuse(scope, send, PayloadTooLarge(
                f"request body of {declared} bytes: this route accepts {limit} bytes at most"))
            return
        carries_body = bool(declared) or "transfer-encoding" in headers
        if carries_body and self.state is not None and path.startswith("/v1/"):
            if not await self._authenticated(scope, headers, send):
                return
        await self._run_counted(scope, receive, send, limit=limit)

    async def _authenticated(self, scope: Scope, headers: Headers, send: Send) -> bool:
        """Authenticate the caller before its body is read, the principal left in the scope for
        ``get_principal``; False once the refusal is sent."""
        try:
            principal = await authenticate(self.state, api_key=headers.get("x-api-key"),
                                           bearer=bearer_of(headers.get("authorization")),
                                           address=client_address(scope))
        except SasError as exc:
            await self._refuse(scope, send, exc)
            return False
        scope.setdefault("state", {})[AUTHENTICATED_PRINCIPAL] = principal
        return True

    async def _run_counted(self, scope: Scope, receive: Receive, send: Send, *, limit: int) -> None:
        """Run the app with the body counted as it streams: 413 (and no more of the body) past ``limit``."""
        received = 0
        refused = False
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received, refused
            if refused:
                raise _BodyTooLarge()  # an app reading on after the refusal gets no more of the body
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    if not response_started:
                        await self._refuse(scope, send, PayloadTooLarge(
                            f"request body larger than {limit} bytes, the most this route accepts"))
                    raise _BodyTooLarge()
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if refused:
                return  # the app's own answer to its interrupted read (FastAPI: a 400): the 413 is sent
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except _BodyTooLarge:
            pass

    @staticmethod
    async def _refuse(scope: Scope, send: Send, exc: SasError) -> None:
        """Answer ``exc`` in the route's format (OperationOutcome on /fhir, a French page on the web
        pages, JSON elsewhere), closing the connection (the body was not read)."""
        headers = {"Connection": "close"}
        path = scope["path"]
        if _is_fhir(path):
            if isinstance(exc, PayloadTooLarge):
                code = "too-long"
            else:
                code = SAS_CODES.get(exc.status_code, "exception")
            if hasattr(exc, "retry_after_s"):
                headers["Retry-After"] = str(exc.retry_after_s)
            response: Response = outcome_response(exc.status_code, [Issue("error", code, exc.message)], headers)
        elif path.startswith("/v1/") or not isinstance(exc, PayloadTooLarge):
            response = sas_error_response(exc, headers=headers)
        else:
            response = HTMLResponse(_TOO_LARGE_PAGE, status_code=413, headers=headers)
        await response(scope, _no_body, send)


_TOO_LARGE_PAGE = ("<!doctype html><html lang=\"fr\"><head><meta charset=\"utf-8\"><title>Requête trop "
                   "volumineuse</title></head><body><h1>Requête trop volumineuse</h1><p>Le formulaire envoyé "
                   "dépasse la taille acceptée. Revenez à la page précédente et réessayez.</p></body></html>")


async def _no_body() -> Message:
    return {"type": "http.disconnect"}


def _content_length(headers: Headers) -> int | None:
    """The declared body size (``None``: absent or not a number, the server has refused the latter)."""
    raw = headers.get("content-length")
    if raw is None or not raw.strip().isdigit():
        return None
    return int(raw)


def install_middleware(app: FastAPI, settings: Settings) -> None:
    """Register middleware (outermost last) and the ``/metrics`` endpoint."""
    # Innermost: its refusals (413, 401/429 before a body) still carry the security headers and metrics.
    app.add_middleware(BodyLimitMiddleware, settings=settings, state=app.state)
    app.add_middleware(MetricsAndHeadersMiddleware)
    if settings.cors_allow_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_allow_origins, allow_credentials=False,
            allow_methods=["GET", "POST", "PUT", "DELETE"], allow_headers=["Authorization", "Content-Type",
                                                                           "X-Request-ID", "Idempotency-Key"],
            expose_headers=["X-Request-ID", "Retry-After"], max_age=600,
        )
    app.add_middleware(CorrelationIdMiddleware, header_name="X-Request-ID")

    @app.get("/metrics", include_in_schema=False, dependencies=[Depends(roles(Role.ADMIN))])
    def metrics() -> Response:
        """Prometheus exposition (scraped with an admin bearer token)."""
        try:
            refresh_metrics(app)
        except Exception:  # noqa: BLE001 - the other figures are still worth serving
            logging.getLogger(__name__).exception(
                "could not refresh the figures read from the index (harvest alerts, INT_L02)")
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
