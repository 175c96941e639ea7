"""FastAPI application factory: the services are built here, once (``search_api.services``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from elasticsearch import Elasticsearch
from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from sas_core.es import make_client
from sas_core.settings import Settings
from search_api import web
from search_api.errors import install_error_handlers
from search_api.executor import Executor
from search_api.hosts import install_host_checks
from search_api.middleware import install_middleware
from search_api.routes import (
    accounts,
    agenda,
    api_keys,
    bookings,
    contextual,
    dashboards,
    declarations,
    fhir,
    health,
    me,
    orientations,
)
from search_api.routes import audit as audit_routes
from search_api.routes import cpts as cpts_routes
from search_api.routes import search as search_routes
from search_api.services import Services, build_services

#: Pooled Elasticsearch connections of one API process (= the default thread pool size of the endpoints).
API_ES_CONNECTIONS = 40


def create_app(settings: Settings | None = None, *, es: Elasticsearch | None = None) -> FastAPI:
    """Build the API. ``es`` may be injected (tests pass a guarded real client)."""
    settings = settings or Settings()
    # As many pooled connections as the thread pool runs requests: with the client's default of 10, the
    # 11th concurrent search waited for a connection inside the API.
    # The standard library's HTTP client under the Elasticsearch client: ~170 µs less CPU per request than
    # its urllib3 node, two or three requests per search (``sas_core.es_node``).
    executor = Executor(es=es or make_client(settings, connections_per_node=API_ES_CONNECTIONS, stdlib_http=True),
                        prefix=settings.index_prefix)
    services = build_services(settings, executor=executor)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # The replica count (what the rate limits divide by) is kept while the app serves, when used.
        if settings.rate_limit_split_replicas:
            await run_in_threadpool(services.replicas.start)
        try:
            yield
        finally:
            await run_in_threadpool(services.replicas.close)

    app = FastAPI(
        lifespan=lifespan,
        docs_url=None, redoc_url=None,  # /docs is served by the web interface with local assets (web/docs.py)
        title="SAS platform API",
        version="1",
        description=(
            "Search of free appointments with town doctors for the Service d'Accès aux Soins. "
            "Every endpoint except /healthz, /readyz and the docs needs a bearer token."
        ),
    )
    publish_services(app, services)
    install_error_handlers(app)
    install_host_checks(app, settings)  # before the headers middleware, so that its 400 gets them too
    install_middleware(app, settings)
    app.include_router(health.router)
    app.include_router(me.router)
    app.include_router(agenda.router)
    app.include_router(api_keys.router)
    app.include_router(audit_routes.router)
    app.include_router(search_routes.router)
    app.include_router(cpts_routes.router)
    for workflow_router in (bookings.router, orientations.router, declarations.router, dashboards.router,
                            fhir.router, contextual.router, accounts.router):
        app.include_router(workflow_router)
    web.install(app)  # HTML pages, /static, /v1/geocode/suggest
    return app


def publish_services(app: FastAPI, services: Services) -> None:
    """``app.state.services``, the one object routes and pages read. The few services read by code that
    sees only the ASGI state (authentication in the middleware and dependencies, the readiness probe, the
    INT_R03 routes shared with the mutual-TLS listener) are also named on their own there: the same objects."""
    app.state.services = services
    for name in ("settings", "executor", "readiness", "search_admission", "token_verifier", "api_keys",
                 "rate_limiter", "auth_failures", "workflow", "web_sessions"):
        setattr(app.state, name, getattr(services, name))
