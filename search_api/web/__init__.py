"""The web interface (French): server-rendered pages, server-side sessions, vendored assets.

``install(app)`` adds the pages (the session store, ``web.session``, is one of the app's services), the
static files (``/static/…``, a route: see ``pages.static``) and the handlers turning "no session" into a
303 to ``/login``, "wrong role" into a 403 page and "rate limit spent" into a 429 page.
"""

from __future__ import annotations

from fastapi import FastAPI


def install(app: FastAPI) -> None:
    """Include the page and geocoding-suggestion routes, register the handlers (``web.handlers``)."""
    # Imported here, not at the top: the services import ``search_api.web.session`` (a package import runs
    # this module first) and the pages import the services.
    from search_api.web import docs, handlers, pages, suggest

    handlers.register(app)
    for router in pages.ROUTERS:
        app.include_router(router)
    app.include_router(docs.router)
    app.include_router(suggest.router)
