"""Mapping of the platform's error hierarchy to HTTP answers, in one place."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from sas_core.errors import BackendUnavailable, SasError, TooManyRequests, Unauthenticated

Handled = TypeVar("Handled", bound=Exception)


def add_handler(app: FastAPI, exception: type[Handled],
                handler: Callable[[Request, Handled], Awaitable[Response]]) -> None:
    """``app.add_exception_handler``, the handler typed for the class it is registered for."""
    # Starlette calls a handler only with instances of the class it is registered for, which its
    # annotation (a handler of any Exception) cannot say.
    app.add_exception_handler(exception, handler)  # type: ignore[arg-type]


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
    add_handler(app, SasError, _sas_error)
    add_handler(app, RequestValidationError, _validation_error)
    add_handler(app, StarletteHTTPException, _http_error)
