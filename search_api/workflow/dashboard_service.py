"""The dashboards' figures, read from the indices (``/v1/dashboards/*`` and the dashboard pages)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sas_core.clock import utcnow
from sas_core.settings import Settings
from search_api.auth import Principal
from search_api.workflow import dashboards
from search_api.workflow.scope import scope_for
from search_api.workflow.store import DocStore


class DashboardService:
    """Aggregations over orientations, participation, declarations and harvests, within the caller's scope."""

    def __init__(self, *, store: DocStore, settings: Settings) -> None:
        self.store = store
        self.settings = settings

    def orientations(self, principal: Principal, *, start: datetime, end: datetime,
                     territories: tuple[str, ...]) -> dict[str, Any]:
        body = dashboards.orientations_body(scope_for(principal), start=start, end=end, territories=territories)
        return {"from": start, "to": end, **dashboards.shape_orientations(self.store.search("orientations", body))}

    def participation(self, principal: Principal, *, territories: tuple[str, ...]) -> dict[str, Any]:
        body = dashboards.participation_body(scope_for(principal), territories=territories)
        return dashboards.shape_participation(self.store.search("offers", body))

    def declarations(self, principal: Principal, *, start: datetime, end: datetime,
                     territories: tuple[str, ...]) -> dict[str, Any]:
        scope = scope_for(principal)
        body = dashboards.declarations_body(scope, start=start, end=end, territories=territories)
        hiding = self.store.search("declarations", dashboards.hiding_body(scope, now=utcnow(), territories=territories))
        return {"from": start, "to": end, **dashboards.shape_declarations(self.store.search("declarations", body)),
                **dashboards.shape_hiding(hiding)}

    def harvest(self, *, days: int) -> dict[str, Any]:
        """Per-vendor harvest health over the last ``days`` days (every vendor: administrators and regulators
        see the same platform-wide figures)."""
        now = utcnow()
        stale_after = self.settings.stale_after_s
        runs = self.store.search("harvest_runs", dashboards.harvest_runs_body(since=now - timedelta(days=days)))
        slots = self.store.search("slots", dashboards.vendor_slots_body(now=now, stale_after_s=stale_after))
        return {"at": now, "days": days, "stale_after_s": stale_after,
                "vendors": dashboards.shape_vendor_health(runs, slots, now=now, stale_after_s=stale_after)}
