"""Dashboards: pure aggregation bodies (and the shaping of their answers) over the platform's indices.

- orientations per day (Europe/Paris days), territory, status, category and source, and per territory
  the orientations whose latest INT_L02 message the regulation software did not acknowledge;
- effecteurs taking part per territory (offers index: ``sas.participates``);
- declarations per kind and territory, active or not, and who hides whom now (active unavailability:
  author, role and territories, practitioner and place, until when);
- per-vendor harvest health: last success, error rate, runs (``harvest_runs``) and, from the slots
  index, slots served, stale slots and the age of the freshest write.

Every body takes the caller's ``Scope`` where the data is territorial.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from search_api.workflow.scope import Scope, declaration_scope_filter, orientation_scope_filter

TIMEZONE = "Europe/Paris"
MAX_BUCKETS = 200
MAX_VENDORS = 100


#: Latest INT_L02 message not acknowledged by the regulation software (``acknowledged`` is delivered;
#: no state at all means INT_L02 was off when the orientation was made).
LRM_UNDELIVERED_FILTER = {"terms": {"lrm_delivery.state": ["held", "queued", "published", "refused"]}}


def _within(*, restriction: dict | None, territories: tuple[str, ...]) -> list[dict]:
    """The caller's scope and the territories asked for, as filter clauses (none when unrestricted)."""
    clauses = [restriction] if restriction is not None else []
    if territories:
        clauses.append({"terms": {"territory": sorted(set(territories))}})
    return clauses


def _terms(field: str, size: int = MAX_BUCKETS) -> dict:
    return {"terms": {"field": field, "size": size, "order": {"_key": "asc"}}}


def orientations_body(scope: Scope, *, start: datetime, end: datetime, territories: tuple[str, ...] = ()) -> dict:
    """Orientations created in [start, end): per day (with statuses), territory, status, category, source."""
    filters: list[dict] = [{"range": {"created_at": {"gte": start.isoformat(), "lt": end.isoformat()}}}]
    filters += _within(restriction=orientation_scope_filter(scope), territories=territories)
    return {
        "size": 0,
        "track_total_hits": True,
        "query": {"bool": {"filter": filters}},
        "aggs": {
            "per_day": {
                "date_histogram": {
                    "field": "created_at", "calendar_interval": "day", "time_zone": TIMEZONE,
                    "min_doc_count": 0, "format": "yyyy-MM-dd",
                    # Epoch milliseconds: bounds are otherwise parsed with ``format`` (a day, no time).
                    "extended_bounds": {"min": int(start.timestamp() * 1000),
                                        "max": int(end.timestamp() * 1000) - 1},
                },
                "aggs": {"status": _terms("status", 10)},
            },
            "territory": {**_terms("territory"), "aggs": {
                "status": _terms("status", 10),
                "lrm_undelivered": {"filter": LRM_UNDELIVERED_FILTER,
                                    "aggs": {"state": _terms("lrm_delivery.state", 10)}}}},
            "lrm_delivery": _terms("lrm_delivery.state", 10),
            "status": _terms("status", 10),
            "category": _terms("category", 10),
            "source": _terms("source", 10),
        },
    }


def participation_body(scope: Scope, *, territories: tuple[str, ...] = ()) -> dict:
    """Effecteurs taking part in the SAS, per territory (distinct national ids and places)."""
    filters: list[dict] = [{"term": {"sas.participates": True}}]
    wanted = set(territories)
    if not scope.everything:
        wanted = (wanted & set(scope.territories)) if wanted else set(scope.territories)
        if not wanted:
            wanted = {"-none-"}   # effecteurs alone have no territorial dashboard
    if wanted:
        filters.append({"terms": {"territory": sorted(wanted)}})
    return {
        "size": 0,
        "track_total_hits": True,
        "query": {"bool": {"filter": filters}},
        "aggs": {
            "territory": {**_terms("territory"), "aggs": {
                "effecteurs": {"cardinality": {"field": "national_id", "precision_threshold": 40000}},
                "beyond": {"filter": {"term": {"sas.accepts_beyond": True}}},
                "kind": _terms("kind", 10),
            }},
            "effecteurs": {"cardinality": {"field": "national_id", "precision_threshold": 40000}},
        },
    }


def declarations_body(scope: Scope, *, start: datetime, end: datetime, territories: tuple[str, ...] = ()) -> dict:
    """Declarations made in [start, end): per kind, territory, author role; active ones."""
    filters: list[dict] = [{"range": {"created_at": {"gte": start.isoformat(), "lt": end.isoformat()}}}]
    filters += _within(restriction=declaration_scope_filter(scope), territories=territories)
    return {
        "size": 0,
        "track_total_hits": True,
        "query": {"bool": {"filter": filters}},
        "aggs": {
            "kind": {**_terms("kind", 10), "aggs": {"active": {"filter": {"term": {"active": True}}}}},
            "territory": {**_terms("territory"), "aggs": {"kind": _terms("kind", 10)}},
            "declared_by_role": _terms("declared_by_role", 10),
            "active": {"filter": {"term": {"active": True}}},
        },
    }


#: Rows of "who hides whom" (active unavailability, newest first); the total says when there are more.
MAX_HIDING_ROWS = 200
HIDING_FIELDS = ["id", "declared_by", "declared_by_name", "declared_by_role", "declared_by_roles",
                 "declared_by_territories", "subject_name", "subject_national_id", "offer_id", "place_address",
                 "territory", "scope", "periods", "created_at"]


def hiding_body(scope: Scope, *, now: datetime, territories: tuple[str, ...] = ()) -> dict:
    """Active unavailability declarations still hiding (or about to hide) a practitioner at ``now``,
    whenever they were filed: who hides whom, from which role and territory, until when."""
    filters: list[dict] = [
        {"term": {"kind": "unavailable"}},
        {"term": {"active": True}},
        {"nested": {"path": "periods", "query": {"bool": {"should": [
            {"bool": {"must_not": {"exists": {"field": "periods.end"}}}},
            {"range": {"periods.end": {"gt": now.isoformat()}}},
        ], "minimum_should_match": 1}}}},
    ]
    filters += _within(restriction=declaration_scope_filter(scope), territories=territories)
    return {
        "size": MAX_HIDING_ROWS,
        "track_total_hits": True,
        "sort": [{"created_at": "desc"}, {"id": "asc"}],
        "_source": HIDING_FIELDS,
        "query": {"bool": {"filter": filters}},
        "aggs": {"author_role": _terms("declared_by_role", 10)},
    }


def _until(periods: list[dict]) -> str | None:
    """End of the last period (``None``: indefinitely); ends may carry different offsets."""
    ends = [p.get("end") for p in periods or []]
    known = [e for e in ends if e is not None]
    if not ends or len(known) < len(ends):
        return None
    return max(known, key=datetime.fromisoformat)


def shape_hiding(response: dict) -> dict[str, Any]:
    rows = []
    for hit in response.get("hits", {}).get("hits", []):
        d = hit.get("_source") or {}
        rows.append({
            "id": d.get("id"), "author": d.get("declared_by"), "author_name": d.get("declared_by_name"),
            "author_role": d.get("declared_by_role"),
            # Reports filed before the author's roles were recorded show the author role alone.
            "author_roles": d.get("declared_by_roles") or [d.get("declared_by_role")],
            "author_territories": d.get("declared_by_territories") or [],
            "practitioner_name": d.get("subject_name"), "practitioner_national_id": d.get("subject_national_id"),
            "offer_id": d.get("offer_id"), "place_address": d.get("place_address"), "territory": d.get("territory"),
            "scope": d.get("scope"), "since": (d.get("periods") or [{}])[0].get("start"),
            "until": _until(d.get("periods") or []), "created_at": d.get("created_at"),
        })
    return {"hiding_total": _total(response),
            "hiding_per_author_role": _buckets(response.get("aggregations", {}).get("author_role")),
            "hiding": rows}


#: The latest run of a vendor, for its mass-deletion alert (``deletions_held``, ``alerts``): the alert
#: stands until a later run of the vendor is trusted again.
LATEST_RUN_AGG = {"top_hits": {"size": 1, "sort": [{"started_at": {"order": "desc"}}],
                               "_source": ["status", "started_at", "deletions_held", "alerts"]}}


def latest_harvest_runs_body() -> dict:
    """Per vendor, its latest harvest run (``/metrics``: ``sas_harvest_deletions_held``)."""
    return {
        "size": 0,
        "query": {"bool": {"filter": [{"term": {"kind": "harvest"}}]}},
        "aggs": {"vendor": {"terms": {"field": "vendor", "size": MAX_VENDORS, "order": {"_key": "asc"}},
                            "aggs": {"latest": LATEST_RUN_AGG}}},
    }


def latest_runs(response: dict) -> dict[str, dict[str, Any]]:
    """vendor → ``_source`` of its latest run (from ``LATEST_RUN_AGG``)."""
    latest: dict[str, dict[str, Any]] = {}
    for bucket in response.get("aggregations", {}).get("vendor", {}).get("buckets", []):
        hits = bucket.get("latest", {}).get("hits", {}).get("hits", [])
        if hits:
            latest[bucket["key"]] = hits[0].get("_source") or {}
    return latest


def harvest_runs_body(*, since: datetime) -> dict:
    """Per vendor: runs since ``since``, failed / partial ones, last run and last success."""
    return {
        "size": 0,
        "query": {"bool": {"filter": [
            {"term": {"kind": "harvest"}},
            {"range": {"started_at": {"gte": since.isoformat()}}},
        ]}},
        "aggs": {
            "vendor": {
                "terms": {"field": "vendor", "size": MAX_VENDORS, "order": {"_key": "asc"}},
                "aggs": {
                    # A run killed before its end (marked ``interrupted`` by the next one) failed too.
                    "failed": {"filter": {"terms": {"status": ["failed", "interrupted"]}}},
                    "partial": {"filter": {"term": {"status": "partial"}}},
                    "last_run": {"max": {"field": "started_at"}},
                    "last_success": {"filter": {"term": {"status": "success"}},
                                     "aggs": {"at": {"max": {"field": "ended_at"}}}},
                    "requests": {"sum": {"field": "requests"}},
                    "rejected": {"sum": {"field": "rejected"}},
                    "latest": LATEST_RUN_AGG,
                    # The latest run that reported errors: the harvest page shows its first error.
                    "last_failure": {"filter": {"bool": {
                        "filter": [{"terms": {"status": ["failed", "interrupted", "partial"]}}],
                        "must": [{"exists": {"field": "errors"}}]}},
                        "aggs": {"run": {"top_hits": {"size": 1, "sort": [{"started_at": {"order": "desc"}}],
                                                      "_source": ["status", "started_at", "errors"]}}}},
                },
            }
        },
    }


def vendor_slots_body(*, now: datetime, stale_after_s: int) -> dict:
    """Per vendor: slots in the index, slots search may show (not over, not hidden, not stale past the
    limit), stale ones, and the time of the freshest write."""
    stale_limit = (now - timedelta(seconds=stale_after_s)).isoformat()
    return {
        "size": 0,
        "query": {"bool": {"filter": [{"term": {"source": "vendor"}}]}},
        "aggs": {
            "vendor": {
                "terms": {"field": "vendor", "size": MAX_VENDORS, "order": {"_key": "asc"}},
                "aggs": {
                    "served": {"filter": {"bool": {
                        "filter": [{"range": {"end": {"gt": now.isoformat()}}}],
                        "must_not": [{"term": {"hidden": True}}, {"range": {"stale_since": {"lte": stale_limit}}}],
                    }}},
                    "stale": {"filter": {"exists": {"field": "stale_since"}}},
                    "oldest_stale": {"min": {"field": "stale_since"}},
                    "last_write": {"max": {"field": "harvested_at"}},
                },
            }
        },
    }


# --- Shaping the answers -----------------------------------------------------------------------------------


def _buckets(agg: dict | None) -> dict[str, int]:
    return {str(b["key"]): int(b["doc_count"]) for b in (agg or {}).get("buckets", [])}


def _total(response: dict) -> int:
    total = response.get("hits", {}).get("total", 0)
    return int(total["value"] if isinstance(total, dict) else total)


def shape_orientations(response: dict) -> dict[str, Any]:
    aggs = response.get("aggregations", {})
    return {
        "total": _total(response),
        "per_day": [{"day": b["key_as_string"], "count": int(b["doc_count"]), "status": _buckets(b.get("status"))}
                    for b in aggs.get("per_day", {}).get("buckets", [])],
        "per_territory": [{"territory": b["key"], "count": int(b["doc_count"]), "status": _buckets(b.get("status")),
                           "lrm_undelivered": int(b.get("lrm_undelivered", {}).get("doc_count", 0)),
                           "lrm_undelivered_states": _buckets(b.get("lrm_undelivered", {}).get("state"))}
                          for b in aggs.get("territory", {}).get("buckets", [])],
        "per_lrm_delivery": _buckets(aggs.get("lrm_delivery")),
        "per_status": _buckets(aggs.get("status")),
        "per_category": _buckets(aggs.get("category")),
        "per_source": _buckets(aggs.get("source")),
    }


def shape_participation(response: dict) -> dict[str, Any]:
    aggs = response.get("aggregations", {})
    return {
        "places": _total(response),
        "effecteurs": int(aggs.get("effecteurs", {}).get("value", 0)),
        "per_territory": [
            {"territory": b["key"], "places": int(b["doc_count"]), "effecteurs": int(b["effecteurs"]["value"]),
             "accepting_beyond_slots": int(b["beyond"]["doc_count"]), "kinds": _buckets(b.get("kind"))}
            for b in aggs.get("territory", {}).get("buckets", [])
        ],
    }


def shape_declarations(response: dict) -> dict[str, Any]:
    aggs = response.get("aggregations", {})
    return {
        "total": _total(response),
        "active": int(aggs.get("active", {}).get("doc_count", 0)),
        "per_kind": [{"kind": b["key"], "count": int(b["doc_count"]), "active": int(b["active"]["doc_count"])}
                     for b in aggs.get("kind", {}).get("buckets", [])],
        "per_territory": [{"territory": b["key"], "count": int(b["doc_count"]), "kinds": _buckets(b.get("kind"))}
                          for b in aggs.get("territory", {}).get("buckets", [])],
        "per_author_role": _buckets(aggs.get("declared_by_role")),
    }


def _instant(value: Any) -> str | None:
    """A max/min aggregation value as ISO text (``value_as_string``), ``None`` when empty."""
    if not isinstance(value, dict) or value.get("value") is None:
        return None
    return value.get("value_as_string")


def shape_vendor_health(runs: dict, slots: dict, *, now: datetime, stale_after_s: int) -> list[dict[str, Any]]:
    """One row per vendor known from runs or slots."""
    rows: dict[str, dict[str, Any]] = {}
    latest = latest_runs(runs)
    for bucket in runs.get("aggregations", {}).get("vendor", {}).get("buckets", []):
        count = int(bucket["doc_count"])
        failed = int(bucket["failed"]["doc_count"])
        partial = int(bucket["partial"]["doc_count"])
        rows[bucket["key"]] = {
            "vendor": bucket["key"], "runs": count, "failed_runs": failed, "partial_runs": partial,
            "error_rate": round((failed + partial) / count, 4) if count else None,
            "last_run": _instant(bucket["last_run"]),
            "last_success": _instant(bucket["last_success"]["at"]),
            "requests": int(bucket["requests"]["value"] or 0),
            "rejected_resources": int(bucket["rejected"]["value"] or 0),
            "deletions_held": int(latest.get(bucket["key"], {}).get("deletions_held") or 0),
            "alerts": list(latest.get(bucket["key"], {}).get("alerts") or []),
            "last_status": latest.get(bucket["key"], {}).get("status"),
            **_last_error(bucket),
        }
    for bucket in slots.get("aggregations", {}).get("vendor", {}).get("buckets", []):
        row = rows.setdefault(bucket["key"], {"vendor": bucket["key"], "runs": 0, "failed_runs": 0, "partial_runs": 0,
                                              "error_rate": None, "last_run": None, "last_success": None,
                                              "requests": 0, "rejected_resources": 0, "deletions_held": 0,
                                              "alerts": [], "last_status": None, "last_error": None,
                                              "last_error_at": None})
        row["slots_indexed"] = int(bucket["doc_count"])
        row["slots_served"] = int(bucket["served"]["doc_count"])
        row["slots_stale"] = int(bucket["stale"]["doc_count"])
        row["stale_since"] = _instant(bucket["oldest_stale"])
        row["last_write"] = _instant(bucket["last_write"])
    for row in rows.values():
        row.setdefault("slots_indexed", 0)
        row.setdefault("slots_served", 0)
        row.setdefault("slots_stale", 0)
        row.setdefault("stale_since", None)
        row.setdefault("last_write", None)
        last = row["last_success"]
        age = None
        if last:
            age = (now - datetime.fromisoformat(last.replace("Z", "+00:00"))).total_seconds()
        row["staleness_s"] = round(age, 1) if age is not None else None
        # A vendor is stale when its last success is older than the stale limit (or it never succeeded).
        row["stale"] = age is None or age > stale_after_s
        # Down: its latest run failed (or was killed), or nothing succeeded within the stale limit.
        row["down"] = row["last_status"] in ("failed", "interrupted") or row["stale"]
    return sorted(rows.values(), key=lambda r: r["vendor"])


def _last_error(bucket: dict) -> dict[str, Any]:
    """``last_error`` (first error of the latest run that reported some) and ``last_error_at`` (its start)."""
    hits = bucket.get("last_failure", {}).get("run", {}).get("hits", {}).get("hits", [])
    source = (hits[0].get("_source") or {}) if hits else {}
    errors = source.get("errors") or []
    return {"last_error": str(errors[0])[:300] if errors else None,
            "last_error_at": source.get("started_at") if errors else None}
