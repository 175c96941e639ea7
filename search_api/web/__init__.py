"""The web interface (French): server-rendered pages, server-side sessions, vendored assets.

``install(app)`` adds the session store (``web.session``), the pages, the static files (``/static/…``, a route:
see ``pages.static``) and the handlers turning "no session" into a 303 to ``/login``, "wrong role" into a 403
page and "rate limit spent" into a 429 page.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response


def install(app: FastAPI) -> None:
    """Include the page and geocoding-suggestion routes, register the handlers."""
    from search_api.web import docs, pages, suggest
    from search_api.web.render import render
    from search_api.web.session import LoginRequired, PageForbidden, PageRateLimited, SessionStore, login_location

    app.state.web_sessions = SessionStore(executor=app.state.executor, settings=app.state.settings)

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

    app.add_exception_handler(LoginRequired, login_required)
    app.add_exception_handler(PageForbidden, forbidden)
    app.add_exception_handler(PageRateLimited, rate_limited)
    app.include_router(pages.router)
    app.include_router(docs.router)
    app.include_router(suggest.router)
