"""Mapping of the platform's error hierarchy to HTTP answers, in one place."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from sas_core.errors import BackendUnavailable, SasError, TooManyRequests, Unauthenticated


def _body(code: str, message: str, details: dict | None = None) -> dict:
    body: dict = {"error": code, "message": message}
    if details:
        body["details"] = details
    return body


def sas_error_response(exc: SasError, *, headers: dict[str, str] | None = None) -> JSONResponse:
    """The JSON answer of ``exc`` (also sent by the ASGI middleware, before any route runs)."""
    headers = dict(headers or {})
    if isinstance(exc, (BackendUnavailable, TooManyRequests)):
        headers["Retry-After"] = str(exc.retry_after_s)
    if isinstance(exc, Unauthenticated):
        headers["WWW-Authenticate"] = 'Bearer realm="sas"'
    return JSONResponse(_body(exc.code, exc.message, exc.details), status_code=exc.status_code, headers=headers)


async def _sas_error(_: Request, exc: SasError) -> JSONResponse:
    return sas_error_response(exc)


async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    problems = [
        {"where": ".".join(str(p) for p in err.get("loc", ())), "problem": err.get("msg", "invalid")}
        for err in exc.errors()
    ]
    message = "; ".join(f"{p['where']}: {p['problem']}" for p in problems) or "invalid request"
    return JSONResponse(_body("invalid_request", message, {"problems": problems}), status_code=422)


async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    return JSONResponse(
        _body("http_error", str(exc.detail)), status_code=exc.status_code, headers=getattr(exc, "headers", None)
    )


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    app.add_exception_handler(SasError, _sas_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
