"""The vendor's slots already indexed in a run's window: what the run compares its answers with."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from elasticsearch import Elasticsearch

from connectors.vendors.config import VendorConfig
from indexer.harvest.window import Window
from indexer.scroll import scroll_pages
from sas_core.clock import iso


@dataclass
class ExistingSlots:
    """The vendor's indexed slots of the window: id → (roster key, content hash, stale)."""

    by_id: dict[str, tuple[str | None, str | None, bool]] = field(default_factory=dict)
    by_key: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    #: Slots of answered batches that did not come back, deleted once every batch is in (the guard).
    to_delete: list[str] = field(default_factory=list)
    #: Hidden slots whose platform claim (a redirect booking with no INT_R03 report) has expired: the
    #: vendor listing them free again releases them (back to search).
    expired_claims: set[str] = field(default_factory=set)


_NO_FIELDS: dict = {}
_NONE = (None,)


def scan_existing(es: Elasticsearch, *, slots_alias: str, vendor: VendorConfig, window: Window,
                  now: datetime, page_size: int = 10_000) -> ExistingSlots:
    """Ids, roster key, content hash and staleness of the vendor's slots in ``window`` (one scan, doc
    values only), and its hidden slots whose platform claim has expired."""
    existing = ExistingSlots()
    query = {"bool": {"filter": [
        {"term": {"vendor": vendor.name}}, {"term": {"source": "vendor"}},
        {"range": {"start": {"gte": iso(window.start), "lte": iso(window.end)}}},
    ]}}
    by_id, by_key = existing.by_id, existing.by_key
    for hits in scroll_pages(es, index=slots_alias, query=query, page_size=page_size, hit_keys=("_id", "fields"),
                             source=False, docvalue_fields=[{"field": "roster_key"}, {"field": "content_hash"},
                                                            {"field": "stale_since"}]):
        for hit in hits:
            fields = hit.get("fields") or _NO_FIELDS
            key = fields.get("roster_key", _NONE)[0]
            by_id[hit["_id"]] = (key, fields.get("content_hash", _NONE)[0], "stale_since" in fields)
            if key is not None:
                by_key[key].add(hit["_id"])
    # A second, separate query rather than one more docvalue field on the scan above: expired claims
    # are a handful at most (abandoned redirect bookings), the scan reads every slot of the window.
    claims = {"bool": {"filter": [
        {"term": {"vendor": vendor.name}}, {"term": {"hidden": True}},
        {"range": {"claim_expires_at": {"lte": iso(now)}}},
        {"range": {"start": {"gte": iso(window.start), "lte": iso(window.end)}}},
    ]}}
    # One plain search, not a scroll: a run costs one request more; more than 10 000 expired claims
    # at one vendor would be released over several runs.
    claimed = es.search(index=slots_alias, query=claims, size=10_000, source=False, filter_path="hits.hits._id")
    existing.expired_claims.update(hit["_id"] for hit in (claimed.get("hits") or {}).get("hits") or [])
    return existing
