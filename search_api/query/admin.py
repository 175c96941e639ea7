"""Bodies of the administration stores: the audit log, integrator API keys, web sessions (pure, golden-tested
in ``tests/unit/search/test_admin_bodies.py``, files in ``golden_admin/``)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sas_core.clock import iso


def audit_records_body(*, actor: str | None, action: str | None, orientation_id: str | None, size: int) -> dict:
    """The newest audit records matching the filters given."""
    filters: list[dict] = []
    for field, value in (("actor", actor), ("action", action), ("orientation_ids", orientation_id)):
        if value:
            filters.append({"term": {field: value}})
    return {"size": size, "track_total_hits": True, "sort": [{"at": "desc"}], "query": {"bool": {"filter": filters}}}


def api_keys_body() -> dict:
    """Every integrator API key, newest first."""
    return {"size": 1000, "sort": [{"created_at": "desc"}], "query": {"match_all": {}}}


def expired_sessions_body(*, now: datetime, idle: timedelta, size: int) -> dict:
    """Web sessions past their end or idle longer than ``idle`` at ``now`` (ids only)."""
    return {"size": size, "_source": False, "query": {"bool": {"should": [
        {"range": {"expires_at": {"lte": iso(now)}}},
        {"range": {"last_seen_at": {"lte": iso(now - idle)}}}], "minimum_should_match": 1}}}
