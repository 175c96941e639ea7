"""The report of one harvest run: its ``harvest_runs`` document and its Prometheus figures."""

from __future__ import annotations

import time
from datetime import datetime

from connectors.vendors.config import VendorConfig
from indexer.harvest.run_stats import RunStats
from indexer.harvest.window import Window
from indexer.run_records import MAX_ERRORS
from mappings.harvest_runs import HarvestRunDoc, ReasonCount
from sas_core.metrics import HARVEST_DURATION, HARVEST_LAST_SUCCESS, HARVEST_RUNS, HARVEST_SLOTS


def run_document(run_id: str, vendor: VendorConfig, window: Window, started_at: datetime, ended_at: datetime,
                 duration_s: float, status: str, stats: RunStats, *, catch_up_at: datetime | None = None) -> dict:
    """The run's ``harvest_runs`` document (what the run did, its alerts, its first error messages)."""
    messages = list(stats.error_messages)
    if stats.batches_failed:
        messages.insert(0, f"{stats.batches_failed} of {stats.batches} batches failed; their slots were kept "
                           f"and marked stale")
    if stats.deletions_held:
        detail = ", ".join(f"{reason}: {count}" for reason, count in sorted(stats.alerts.items()))
        messages.insert(0, f"mass deletion held: {stats.deletions_held} slots the vendor no longer sent were kept "
                           f"and marked stale instead of deleted ({detail})")
    return HarvestRunDoc(
        id=run_id, kind="harvest", vendor=vendor.name, mode=window.mode, started_at=started_at,
        ended_at=ended_at, duration_s=round(duration_s, 3), status=status, requests=stats.requests,
        read=stats.read, upserted=stats.created + stats.updated, deleted=stats.deleted + stats.expired_deleted,
        unchanged=stats.unchanged, rejected=stats.rejected.count,
        rejected_by_reason=[ReasonCount.model_validate(item) for item in stats.reasons().as_items()],
        errors=messages[:MAX_ERRORS], stale_marked=stats.stale_marked, deletions_held=stats.deletions_held,
        alerts=sorted(stats.alerts), batches=stats.batches, batches_failed=stats.batches_failed,
        batches_retried=stats.batches_retried, catch_up_at=catch_up_at, indexed_read=stats.indexed_read,
    ).model_dump(mode="json")


def observe_run(vendor: str, status: str, document: dict) -> None:
    """Per-vendor Prometheus figures of one run (the ``harvest_runs`` document stays the record)."""
    HARVEST_RUNS.labels(vendor, status).inc()
    HARVEST_DURATION.labels(vendor).observe(document["duration_s"])
    for action, key in (("upserted", "upserted"), ("deleted", "deleted"), ("rejected", "rejected"),
                        ("stale", "stale_marked"), ("unchanged", "unchanged"), ("held", "deletions_held")):
        HARVEST_SLOTS.labels(vendor, action).inc(document.get(key) or 0)
    if status == "success":
        HARVEST_LAST_SUCCESS.labels(vendor).set(time.time())
