"""The vendor's slots already indexed in a run's window: what the run compares its answers with."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from sys import intern

from elasticsearch import Elasticsearch

from connectors.vendors.config import VendorConfig
from indexer.harvest.window import Window
from indexer.scroll import scroll_pages
from sas_core.clock import iso

#: What the run knows of one indexed slot: (roster key, content hash, stale, start in epoch milliseconds).
Indexed = tuple[str | None, str | None, bool, int]


@dataclass
class ExistingSlots:
    """The vendor's indexed slots of the window: id → (roster key, content hash, stale, start)."""

    by_id: dict[str, Indexed] = field(default_factory=dict)
    by_key: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    #: Slots of answered batches that did not come back, deleted once every batch is in (the guard).
    to_delete: list[str] = field(default_factory=list)
    #: Hidden slots whose platform claim (a redirect booking with no INT_R03 report) has expired: the
    #: vendor listing them free again releases them (back to search).
    expired_claims: set[str] = field(default_factory=set)
    #: What the run wrote of the fields above, in order (``indexer.harvest.indexed_book``): applied to the
    #: harvester's copy of what is indexed once the run's writes are all in, so that the vendor's next
    #: incremental run need not read its window again. ``by_id`` itself stays the run's starting view.
    journal: list[tuple] = field(default_factory=list)
    #: Whether the run keeps the journal (incremental runs with a copy; a full sweep writes millions of
    #: slots nationally and the copy drops what it overlaps instead).
    journaling: bool = False
    #: ``time.monotonic()`` when the oldest slot of this view was read from Elasticsearch.
    read_at: float = 0.0

    def add(self, slot_id: str, entry: Indexed) -> None:
        self.by_id[slot_id] = entry
        if entry[0] is not None:
            self.by_key[entry[0]].add(slot_id)

    # -- the journal: one call per write, beside the write ----------------------------------------------

    def wrote(self, slot_id: str, roster_key: str, content_hash: str, start: datetime) -> None:
        """A slot created or rewritten whole (fresh)."""
        self._note(("put", slot_id, roster_key, content_hash, int(start.timestamp() * 1000)))

    def rehashed(self, slot_id: str, content_hash: str) -> None:
        """A slot whose content hash changed alone (fresh)."""
        self._note(("hash", slot_id, content_hash))

    def freshened(self, slot_id: str) -> None:
        self._note(("fresh", slot_id))

    def staled(self, slot_id: str) -> None:
        self._note(("stale", slot_id))

    def deleted(self, slot_id: str) -> None:
        self._note(("gone", slot_id))

    def _note(self, op: tuple) -> None:
        if self.journaling:
            self.journal.append(op)


def vendor_slots(vendor: VendorConfig) -> list[dict]:
    """The filter clauses of the vendor's harvested slots (not its own-agenda ones)."""
    return [{"term": {"vendor": vendor.name}}, {"term": {"source": "vendor"}}]


_NO_FIELDS: dict = {}
_NONE = (None,)
_DOC_VALUES = [{"field": "roster_key"}, {"field": "content_hash"}, {"field": "stale_since"},
               {"field": "start", "format": "epoch_millis"}]


def scan_range(es: Elasticsearch, existing: ExistingSlots, *, slots_alias: str, vendor: VendorConfig,
               start_range: dict[str, str | int], page_size: int = 10_000) -> int:
    """Add the vendor's indexed slots whose start is in ``start_range`` (a ``range`` clause's bounds) to
    ``existing`` (one scan, doc values only); how many were read."""
    query = {"bool": {"filter": [*vendor_slots(vendor), {"range": {"start": start_range}}]}}
    by_id, by_key = existing.by_id, existing.by_key
    read = 0
    for hits in scroll_pages(es, index=slots_alias, query=query, page_size=page_size, hit_keys=("_id", "fields"),
                             source=False, docvalue_fields=_DOC_VALUES):
        read += len(hits)
        # ``ExistingSlots.add`` inlined: this loop runs once per slot of the window.
        for hit in hits:
            fields = hit.get("fields") or _NO_FIELDS
            key = fields.get("roster_key", _NONE)[0]
            if key is not None:
                key = intern(key)   # one string per practitioner, not per slot (the copy outlives the run)
            # ``epoch_millis`` doc values come back as text ("1764590400000").
            by_id[hit["_id"]] = (key, fields.get("content_hash", _NONE)[0], "stale_since" in fields,
                                 int(fields["start"][0]))
            if key is not None:
                by_key[key].add(hit["_id"])
    return read


def expired_claims(es: Elasticsearch, existing: ExistingSlots, *, slots_alias: str, vendor: VendorConfig,
                   window: Window, now: datetime) -> None:
    """The vendor's hidden slots of the window whose platform claim has expired, into ``existing``."""
    # A separate query rather than one more doc value field on the scan: expired claims are a handful at
    # most (abandoned redirect bookings), the scan reads every slot of the window (or none: the
    # harvester's copy of what is indexed does not follow the platform's claims, only its own writes).
    claims = {"bool": {"filter": [
        {"term": {"vendor": vendor.name}}, {"term": {"hidden": True}},
        {"range": {"claim_expires_at": {"lte": iso(now)}}},
        {"range": {"start": {"gte": iso(window.start), "lte": iso(window.end)}}},
    ]}}
    # One plain search, not a scroll: a run costs one request more; more than 10 000 expired claims
    # at one vendor would be released over several runs.
    claimed = es.search(index=slots_alias, query=claims, size=10_000, source=False, filter_path="hits.hits._id")
    existing.expired_claims.update(hit["_id"] for hit in (claimed.get("hits") or {}).get("hits") or [])


def scan_existing(es: Elasticsearch, *, slots_alias: str, vendor: VendorConfig, window: Window,
                  now: datetime, page_size: int = 10_000) -> ExistingSlots:
    """Ids, roster key, content hash, staleness and start of the vendor's slots in ``window`` (one scan,
    doc values only), and its hidden slots whose platform claim has expired."""
    existing = ExistingSlots()
    scan_range(es, existing, slots_alias=slots_alias, vendor=vendor,
               start_range={"gte": iso(window.start), "lte": iso(window.end)}, page_size=page_size)
    expired_claims(es, existing, slots_alias=slots_alias, vendor=vendor, window=window, now=now)
    return existing
