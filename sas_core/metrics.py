"""Prometheus metrics of the platform, defined once (API, harvest and scheduler share the registry).

They are module-level collectors because Prometheus registries are process-wide by design; defining
them registers nothing anywhere else and opens no connection.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

HTTP_LATENCY = Histogram(
    "sas_http_request_duration_seconds", "API request latency by route template",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10),
)
SEARCH_RESULTS = Histogram(
    "sas_search_results", "Offers returned by a search", ["endpoint"],
    buckets=(0, 1, 2, 5, 10, 20, 50, 100, 200),
)
SEARCHES_SHED = Counter("sas_searches_shed_total", "Searches refused with 503 past SAS_MAX_CONCURRENT_SEARCHES")
ES_ERRORS = Counter("sas_elasticsearch_errors_total", "Elasticsearch errors seen by the API and jobs", ["kind"])
HARVEST_RUNS = Counter("sas_harvest_runs_total", "Harvest runs by vendor and outcome", ["vendor", "status"])
# action: upserted, deleted, rejected, stale, unchanged
HARVEST_SLOTS = Counter("sas_harvest_slots_total", "Slots handled by harvests", ["vendor", "action"])
HARVEST_DURATION = Histogram(
    "sas_harvest_duration_seconds", "Duration of one vendor harvest", ["vendor"],
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300),
)
HARVEST_DELETIONS_HELD = Gauge(
    "sas_harvest_deletions_held",
    "Slots the latest harvest of a vendor kept (marked stale) instead of deleting: mass-deletion guard; 0 is normal",
    ["vendor"],
)
HARVEST_LAST_SUCCESS = Gauge(
    "sas_harvest_last_success_timestamp", "Unix time of the last successful harvest", ["vendor"],
)
LRM_MESSAGES = Counter(
    "sas_lrm_messages_total", "INT_L02 messages by outcome (held, queued, published, acknowledged, refused)",
    ["outcome"],
)
LRM_REFUSALS = Counter("sas_lrm_refusals_total", "INT_L02 messages refused, by error code", ["code"])
LRM_UNDELIVERED = Gauge(
    "sas_lrm_undelivered", "Orientations whose latest INT_L02 message is not acknowledged, per territory and state",
    ["territory", "state"],
)
CIRCUIT_STATE = Gauge(
    "sas_vendor_circuit_state", "Circuit breaker per vendor: 0 closed, 1 half-open, 2 open", ["vendor"],
)


def serve_metrics(*, host: str, port: int):
    """Expose this process's metrics on ``http://host:port/metrics`` (the scheduler's harvest figures,
    when it runs apart from the API). Returns the server and its thread (``server.shutdown()`` stops it)."""
    return start_http_server(port, addr=host)
