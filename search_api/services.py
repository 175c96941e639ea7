"""The services of one API process, assembled once by the app factory (``build_services``) and read by
routes and pages through one dependency (``get_services``): no service is built on first use.

Routes and pages call these services; none of them builds another route's objects.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from connectors.directory.nomenclatures import load_specialties
from sas_core.es import make_client
from sas_core.settings import Settings
from search_api.addresses import AddressSearch
from search_api.api_keys import ApiKeyStore
from search_api.audit import AuditLog
from search_api.auth import TokenVerifier
from search_api.executor import Executor
from search_api.geocode import PlaceResolver
from search_api.ratelimit import AuthFailureThrottle, PrincipalRateLimiter
from search_api.readiness import ReadinessProbe
from search_api.replicas import ReplicaRegistry
from search_api.search_service import SearchService
from search_api.shedding import SearchAdmission
from search_api.specialties import SpecialtyResolver
from search_api.suggestions import CombinedSuggestions, SuggestionIndex
from search_api.web.session import SessionStore
from search_api.workflow.agenda import AgendaService
from search_api.workflow.dashboard_service import DashboardService
from search_api.workflow.wiring import Workflow, build_workflow


@dataclass(frozen=True)
class SearchContext:
    """What resolving and running a search needs: the gazetteer (``places``), TRE_R38 and the service."""

    places: PlaceResolver
    specialties: SpecialtyResolver
    service: SearchService
    settings: Settings


@dataclass(frozen=True)
class Services:
    """Every long-lived object of one app, built once at start-up."""

    settings: Settings
    executor: Executor
    readiness: ReadinessProbe
    search_admission: SearchAdmission
    token_verifier: TokenVerifier
    api_keys: ApiKeyStore
    replicas: ReplicaRegistry
    rate_limiter: PrincipalRateLimiter
    auth_failures: AuthFailureThrottle
    audit: AuditLog
    search: SearchContext
    suggestions: CombinedSuggestions
    workflow: Workflow
    dashboards: DashboardService
    agenda: AgendaService
    web_sessions: SessionStore


def build_search_context(settings: Settings, executor: Executor) -> SearchContext:
    """The communes gazetteer and TRE_R38 (half a second to load) and the search service."""
    specialties = SpecialtyResolver(load_specialties(settings.reference_data_dir).labels)
    return SearchContext(
        # Typed addresses are placed with the national address base when it is loaded.
        places=PlaceResolver.from_settings(settings, addresses=AddressSearch(executor)),
        specialties=specialties,
        # Cards name every specialty of their slots and of the directory.
        service=SearchService(executor=executor, report_max_hours=settings.report_max_hours,
                              specialty_label=specialties.label,
                              two_passes_from_slots=settings.search_two_passes_from_slots,
                              two_passes_when_unknown=settings.search_two_passes_when_unknown,
                              count_max_slots=settings.search_count_max_slots),
        settings=settings,
    )


def tune_gc() -> None:
    """Once the reference tables are loaded: the gazetteer and code lists are tens of thousands of long-lived
    objects, moved out of the collector's generations so that full collections stay short (tail latency);
    a search allocates a few thousand short-lived objects (decoded answers), so the young generation is
    collected less often than every 700 allocations."""
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


def build_services(settings: Settings, *, executor: Executor, publisher=None) -> Services:
    """Every service of the app, sharing ``executor`` (the readiness probe has a client of its own)."""
    search = build_search_context(settings, executor)
    audit = AuditLog(executor=executor)
    # A declaration accepted here leaves this process's searches at once (not after the shared read expires).
    workflow = build_workflow(settings, executor, audit=audit, publisher=publisher,
                              on_declarations_changed=search.service.forget_declarations)
    # Started and stopped with the app (its lifespan): an app built and never served counts nothing.
    replicas = ReplicaRegistry(executor=executor, ttl_s=settings.api_replica_ttl_s)
    share = replicas.count if settings.rate_limit_split_replicas else None
    services = Services(
        settings=settings,
        executor=executor,
        # /readyz probes with a client of its own (2 connections): the API's pool blocks when every connection
        # is taken by a search, and a probe waiting there made a saturated but healthy API look dead.
        readiness=ReadinessProbe(
            executor=Executor(es=make_client(settings, request_timeout=5, connections_per_node=2),
                              prefix=settings.index_prefix),
            cache_s=settings.readiness_cache_s, stale_s=settings.readiness_stale_s, wait_s=settings.readiness_wait_s),
        search_admission=SearchAdmission(limit=settings.max_concurrent_searches,
                                         retry_after_s=settings.search_shed_retry_after_s),
        token_verifier=TokenVerifier(settings),
        api_keys=ApiKeyStore(executor=executor, cache_s=settings.api_key_cache_s),
        replicas=replicas,
        rate_limiter=PrincipalRateLimiter(settings.rate_limit, replicas=share),
        auth_failures=AuthFailureThrottle(settings.auth_failure_limit, replicas=share),  # per client address
        audit=audit,
        search=search,
        suggestions=CombinedSuggestions(
            SuggestionIndex(search.places.gazetteer.by_insee.values()), search.places.addresses,
            address_limit=settings.addresses_suggest_limit),
        workflow=workflow,
        dashboards=DashboardService(store=workflow.store, settings=settings),
        agenda=AgendaService(executor=executor, settings=settings),
        web_sessions=SessionStore(executor=executor, settings=settings),
    )
    tune_gc()
    return services


async def get_services(request: Request) -> Services:
    """The app's services (``async``: read on the event loop, no thread hop per request)."""
    return request.app.state.services


async def get_search_context(request: Request) -> SearchContext:
    return request.app.state.services.search


async def get_workflow(request: Request) -> Workflow:
    return request.app.state.services.workflow


async def get_audit(request: Request) -> AuditLog:
    return request.app.state.services.audit


ServicesDep = Annotated[Services, Depends(get_services)]
SearchContextDep = Annotated[SearchContext, Depends(get_search_context)]
WorkflowDep = Annotated[Workflow, Depends(get_workflow)]
AuditDep = Annotated[AuditLog, Depends(get_audit)]
