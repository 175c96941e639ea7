"""FastAPI application factory."""

from __future__ import annotations

from elasticsearch import Elasticsearch
from fastapi import FastAPI

from sas_core.es import make_client
from sas_core.settings import Settings
from search_api.api_keys import ApiKeyStore
from search_api.auth import TokenVerifier
from search_api.ratelimit import AuthFailureThrottle, PrincipalRateLimiter
from search_api.errors import install_error_handlers
from search_api.executor import Executor
from search_api.hosts import install_host_checks
from search_api.middleware import install_middleware
from search_api.readiness import ReadinessProbe
from search_api.shedding import SearchAdmission
from search_api.routes import agenda, api_keys, health, me
from search_api.routes import audit as audit_routes
from search_api.routes import cpts as cpts_routes, search as search_routes
from search_api.routes import accounts, bookings, contextual, dashboards, declarations, fhir, orientations
from search_api import web

#: Pooled Elasticsearch connections of one API process (= the default thread pool size of the endpoints).
API_ES_CONNECTIONS = 40


def create_app(settings: Settings | None = None, *, es: Elasticsearch | None = None) -> FastAPI:
    """Build the API. ``es`` may be injected (tests pass a guarded real client)."""
    settings = settings or Settings()
    app = FastAPI(
        docs_url=None, redoc_url=None,  # /docs is served by the web interface with local assets (web/docs.py)
        title="SAS platform API",
        version="1",
        description=(
            "Search of free appointments with town doctors for the Service d'Accès aux Soins. "
            "Every endpoint except /healthz, /readyz and the docs needs a bearer token."
        ),
    )
    app.state.settings = settings
    # As many pooled connections as the thread pool runs requests: with the client's default of 10, the
    # 11th concurrent search waited for a connection inside the API.
    app.state.executor = Executor(es=es or make_client(settings, connections_per_node=API_ES_CONNECTIONS),
                                  prefix=settings.index_prefix)
    # /readyz probes with a client of its own (2 connections): the API's pool blocks when every connection
    # is taken by a search, and a probe waiting there made a saturated but healthy API look dead.
    app.state.readiness = ReadinessProbe(
        executor=Executor(es=make_client(settings, request_timeout=5, connections_per_node=2),
                          prefix=settings.index_prefix),
        cache_s=settings.readiness_cache_s, stale_s=settings.readiness_stale_s, wait_s=settings.readiness_wait_s)
    app.state.search_admission = SearchAdmission(limit=settings.max_concurrent_searches,
                                                 retry_after_s=settings.search_shed_retry_after_s)
    app.state.token_verifier = TokenVerifier(settings)
    app.state.api_keys = ApiKeyStore(executor=app.state.executor, cache_s=settings.api_key_cache_s)
    app.state.rate_limiter = PrincipalRateLimiter(settings.rate_limit)
    app.state.auth_failures = AuthFailureThrottle(settings.auth_failure_limit)  # per client address
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
