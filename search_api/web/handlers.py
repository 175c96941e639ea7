"""The web pages' exception handlers: "no session" → a 303 to ``/login``, "wrong role" → a 403 page,
"rate limit spent" → a 429 page, and the API's errors in French on pages (the JSON API keeps its
English messages)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response

from sas_core.errors import SasError
from search_api import errors as api_errors
from search_api.web import messages
from search_api.web.render import render
from search_api.web.session import LoginRequired, PageForbidden, PageRateLimited, login_location


def register(app: FastAPI) -> None:
    api_errors.add_handler(app, SasError, sas_error)
    api_errors.add_handler(app, RequestValidationError, validation_error)
    api_errors.add_handler(app, LoginRequired, login_required)
    api_errors.add_handler(app, PageForbidden, forbidden)
    api_errors.add_handler(app, PageRateLimited, rate_limited)


def _is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"


async def login_required(request: Request, exc: LoginRequired) -> Response:
    location = login_location(exc.next_url)
    if _is_htmx(request):
        # htmx follows redirects inside the fragment; ask for a full-page navigation instead.
        return Response(status_code=204, headers={"HX-Redirect": location})
    return RedirectResponse(location, status_code=303)


async def forbidden(request: Request, exc: PageForbidden) -> Response:
    return render(request, "forbidden.html", message=exc.message, status_code=403)


async def rate_limited(request: Request, exc: PageRateLimited) -> Response:
    seconds = exc.retry_after_s
    # An htmx request gets the message alone, swapped where its answer would go (static/js/app.js).
    template = "fragments/rate_limited.html" if _is_htmx(request) else "rate_limited.html"
    response = render(request, template, status_code=429, seconds=seconds)
    response.headers["Retry-After"] = str(seconds)
    return response


def is_page(request: Request) -> bool:
    path = request.url.path
    return path == "/" or path.startswith(("/app/", "/login", "/logout"))


def page_error(request: Request, message: str, status_code: int) -> Response:
    """A page's error in French: the fragment alone for htmx (200: htmx drops 4xx bodies), else a page."""
    if _is_htmx(request):
        return render(request, "fragments/action_error.html", user=None, message=message, status_code=200)
    return render(request, "action_page.html", user=None, fragment="fragments/action_error.html",
                  message=message, status_code=status_code)


async def sas_error(request: Request, exc: SasError) -> Response:
    """The JSON API keeps its English messages; on pages the same errors read in French."""
    if not is_page(request):
        return api_errors.sas_error_response(exc)
    return page_error(request, messages.french(exc), exc.status_code)


async def validation_error(request: Request, exc: RequestValidationError) -> Response:
    if not is_page(request):
        return await api_errors._validation_error(request, exc)
    text = messages.validation_message(exc.errors(), labels=messages.QUERY_LABELS,
                                       subject="Adresse de page incorrecte")
    return page_error(request, text + " Revenez à la page précédente et utilisez ses boutons et filtres.", 400)
