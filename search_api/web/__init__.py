"""The web interface (French): server-rendered pages, server-side sessions, vendored assets.

``install(app)`` adds the pages (the session store, ``web.session``, is one of the app's services), the
static files (``/static/…``, a route: see ``pages.static``) and the handlers turning "no session" into a
303 to ``/login``, "wrong role" into a 403 page and "rate limit spent" into a 429 page.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response


def install(app: FastAPI) -> None:
    """Include the page and geocoding-suggestion routes, register the handlers."""
    # Imported here, not at the top: the services import ``search_api.web.session`` (a package import runs
    # this module first) and the pages import the services.
    from search_api.web import docs, pages, suggest
    from search_api.web.render import render
    from search_api.web.session import LoginRequired, PageForbidden, PageRateLimited, login_location

    async def login_required(request: Request, exc: LoginRequired) -> Response:
        location = login_location(exc.next_url)
        if request.headers.get("HX-Request") == "true":
            # htmx follows redirects inside the fragment; ask for a full-page navigation instead.
            return Response(status_code=204, headers={"HX-Redirect": location})
        return RedirectResponse(location, status_code=303)

    async def forbidden(request: Request, exc: PageForbidden) -> Response:
        return render(request, "forbidden.html", message=exc.message, status_code=403)

    async def rate_limited(request: Request, exc: PageRateLimited) -> Response:
        seconds = exc.retry_after_s
        # An htmx request gets the message alone, swapped where its answer would go (static/js/app.js).
        template = "fragments/rate_limited.html" if request.headers.get("HX-Request") == "true" else "rate_limited.html"
        response = render(request, template, status_code=429, seconds=seconds)
        response.headers["Retry-After"] = str(seconds)
        return response

    from fastapi.exceptions import RequestValidationError

    from sas_core.errors import SasError
    from search_api import errors as api_errors
    from search_api.web import messages

    def is_page(request: Request) -> bool:
        path = request.url.path
        return path == "/" or path.startswith(("/app/", "/login", "/logout"))

    def page_error(request: Request, message: str, status_code: int) -> Response:
        """A page's error in French: the fragment alone for htmx (200: htmx drops 4xx bodies), else a page."""
        if request.headers.get("HX-Request") == "true":
            return render(request, "fragments/action_error.html", user=None, message=message, status_code=200)
        return render(request, "action_page.html", user=None, fragment="fragments/action_error.html",
                      message=message, status_code=status_code)

    # Issue 17 (point 4): the JSON API keeps its English messages; on pages the same errors read in French.
    async def sas_error(request: Request, exc: SasError) -> Response:
        if not is_page(request):
            return api_errors.sas_error_response(exc)
        return page_error(request, messages.french(exc), exc.status_code)

    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        if not is_page(request):
            return await api_errors._validation_error(request, exc)
        text = messages.validation_message(exc.errors(), labels=messages.QUERY_LABELS,
                                           subject="Adresse de page incorrecte")
        return page_error(request, text + " Revenez à la page précédente et utilisez ses boutons et filtres.", 400)

    app.add_exception_handler(SasError, sas_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(LoginRequired, login_required)
    app.add_exception_handler(PageForbidden, forbidden)
    app.add_exception_handler(PageRateLimited, rate_limited)
    for router in pages.ROUTERS:
        app.include_router(router)
    app.include_router(docs.router)
    app.include_router(suggest.router)
