"""Harvest run document: what one harvest (or directory load) did, for health dashboards."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from mappings.common import Doc


class ReasonCount(Doc):
    reason: str
    count: int


class HarvestRunDoc(Doc):
    id: str
    kind: Literal["harvest", "directory"]
    vendor: str | None = None
    mode: str | None = None            # incremental / full, directory: full / incremental
    started_at: datetime
    ended_at: datetime | None = None
    duration_s: float | None = None
    #: ``running`` is written when a harvest starts; a run killed before its end stays ``running`` until the
    #: next run of the vendor, holding the vendor's lease, marks it ``interrupted`` (so a crash never leaves
    #: a run that looks in progress forever).
    status: Literal["running", "success", "partial", "failed", "interrupted"]
    requests: int = 0
    read: int = 0
    upserted: int = 0
    deleted: int = 0
    unchanged: int = 0
    rejected: int = 0
    rejected_by_reason: list[ReasonCount] = []
    errors: list[str] = []
    stale_marked: int = 0
    #: Mass-deletion guard (``indexer.harvest``): slots kept and marked stale instead of deleted, and the
    #: reasons (``batch_mass_deletion``, ``run_mass_deletion``, ``total_mismatch``).
    deletions_held: int = 0
    alerts: list[str] = []
    #: Batches (searches of up to 25 ids) of the run, those that stayed failed, and retries of batches
    #: that failed while the vendor was unavailable (retried once its circuit breaker half-opened).
    batches: int = 0
    batches_failed: int = 0
    batches_retried: int = 0
    #: When the run's budget ran out with batches still failing (outage), the catch-up run asked for.
    catch_up_at: datetime | None = None
    #: Indexed slots of the window the run read from Elasticsearch to compare answers with: all of them
    #: without a copy of what the harvester indexed (``indexer.harvest.indexed_book``), only what entered
    #: the window since the last run with one.
    indexed_read: int = 0
