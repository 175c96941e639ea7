"""Vendor harvest: pull every vendor's free slots (SAS FHIR searches) into the slots index.

One run = one vendor, one window (``incremental``: the next 48 h; ``full``: the next 7 days). Stages:

1. **roster** — who to ask for: the editors file's ``roster`` plus the offers whose ``sas.vendor`` names
   the vendor (SOS: association SIRETs), and every offer of those practitioners, to match places.
2. **existing** — ids, roster key, content hash and staleness of the vendor's indexed slots in the window
   (one scan, doc values only).
3. **fetch** — the searches (25 national ids, or 10 SOS SIRETs sent as ``3`` + SIRET, per request), concurrently
   (``connectors.vendors.client``); SOS records come back with the bare SIRET the directory holds.
4. **map** — bundle → ``SlotRecord`` (``connectors.vendors.mapping``), bad resources counted by reason.
5. **place** — each record is matched to a directory offer (national id + postcode / city + street);
   an unknown place becomes a vendor-only offer, geocoded with the directory's geocoder.
6. **write** — per batch that answered: new slots are ``create``d, changed ones partially ``update``d,
   unchanged ones skipped (their ``content_hash`` matches), and the batch's indexed slots of the window
   that did not come back are deleted by id (taken or cancelled at the vendor). Per batch that failed:
   nothing is deleted; its slots of the window get ``stale_since`` (when not already set).
   Deletions are held back until every batch answered, then checked against the mass-deletion guard
   (below) and written.
7. **report** — one ``harvest_runs`` document.

Why the content hash rather than ``doc_as_upsert`` no-ops: an unchanged slot then costs nothing at all
in Elasticsearch (no write, no version bump), and ``harvested_at`` can honestly say when the content was
last written. When the vendor last confirmed a slot is the time of the vendor's last successful run
(``harvest_runs``) — a per-slot "last seen" would rewrite every slot on every run.

Mass-deletion guard: a vendor answering ``200`` with an empty searchset (a vendor-side bug) looks exactly
like "every slot was taken". Deletions are therefore trusted only when they look like business: a batch
that would delete more than ``harvest_mass_delete_share`` of the slots it had indexed (from
``harvest_mass_delete_min`` deletions on), or whose own ``Bundle.total`` says more slots matched than it
sent, keeps those slots and marks them stale instead; so does a whole run over the same limits. The run is
then ``partial``, with ``deletions_held`` and ``alerts`` (the reasons) in its document, on the
harvest-health page and in ``/metrics``. Stale slots leave the search after ``stale_after_s`` anyway; a
later healthy answer clears them or deletes the ones really gone.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import logging
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

import orjson
from elasticsearch import ApiError, ConflictError, Elasticsearch, helpers
from elastic_transport import TransportError

from connectors.vendors.client import BreakerBoard, CircuitOpen, VendorClient, VendorError, VendorUnavailable
from connectors.vendors.config import VendorConfig, find_vendor, load_editors
from connectors.vendors.mapping import BundleError, BundleMapper, SlotRecord, specialty_lookup
from connectors.vendors.queries import batches
from mappings.harvest_runs import HarvestRunDoc, ReasonCount
from mappings.offers import OfferAddress, OfferDoc, OfferSas, OfferSos
from mappings.registry import alias_name
from sas_core.errors import ConfigurationError
from sas_core.metrics import ES_ERRORS, HARVEST_DURATION, HARVEST_LAST_SUCCESS, HARVEST_RUNS, HARVEST_SLOTS
from sas_core.settings import Settings
from sas_core.structure_ids import siret_bare, siret_wire
from sas_core.territories import territory_for_departement
from sas_core.text import fold

log = logging.getLogger(__name__)

Mode = Literal["incremental", "full"]
_OFFER_FIELDS = ["id", "kind", "national_id", "name", "name_folded", "last_name", "first_name", "specialties",
                 "address", "departement", "territory", "location", "sas.vendor", "sos", "convention_sector"]
#: Errors kept verbatim in a run document (the rest are only counted).
_MAX_ERRORS = 20


def tune_gc() -> None:
    """Make the cyclic garbage collector cheap for allocation-heavy harvesting.

    Parsing a page of 1,000 slots allocates ~100,000 dicts, lists and strings; with the default
    thresholds the collector runs every 700 allocations and its older generations walk every long-lived
    object (offer book, existing slot ids): measured here, that tripled the cost of ``orjson.loads``.
    Harvest data holds no reference cycles, so collecting less often wastes no memory. Process-wide and
    idempotent; objects alive at this point are frozen out of future collections.
    """
    if gc.get_threshold()[0] < 50_000:
        gc.set_threshold(50_000, 20, 100)
        gc.freeze()


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Window:
    """The time window of one run: slots starting in [start, end]."""

    mode: Mode
    start: datetime
    end: datetime

    @classmethod
    def for_mode(cls, vendor: VendorConfig, mode: Mode, *, now: datetime) -> "Window":
        span = (timedelta(hours=vendor.incremental_window_h) if mode == "incremental"
                else timedelta(days=vendor.full_window_days))
        # Whole seconds: the same instant is sent to the vendor and used to scope deletions.
        start = now.replace(microsecond=0)
        return cls(mode, start, start + span)


@dataclass
class RunStats:
    """Counters of one run (what the ``harvest_runs`` document reports)."""

    requests: int = 0
    batches: int = 0
    batches_failed: int = 0
    read: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    expired_deleted: int = 0
    stale_marked: int = 0
    #: Deletions the mass-deletion guard held back (slots kept, marked stale), and why (reason → slots).
    deletions_held: int = 0
    alerts: Counter = field(default_factory=Counter)
    places_created: int = 0
    #: Batch retries after the vendor was unavailable, and whether some were still due when the budget ran out.
    batches_retried: int = 0
    retry_pending: bool = False
    rejected: Counter = field(default_factory=Counter)
    flags: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    error_messages: list[str] = field(default_factory=list)

    def error(self, reason: str, message: str) -> None:
        self.errors[reason] += 1
        if len(self.error_messages) < _MAX_ERRORS and message not in self.error_messages:
            self.error_messages.append(message)


# --------------------------------------------------------------------------------------------------
# Offers: the roster and the places slots are attached to
# --------------------------------------------------------------------------------------------------

def _line_tokens(line: str | None) -> set[str]:
    return set(fold(line).split()) if line else set()


class OfferBook:
    """The offers a vendor's slots can belong to, indexed for matching."""

    def __init__(self, offers: Iterable[dict]) -> None:
        self.by_national_id: dict[str, list[dict]] = defaultdict(list)
        self.by_siret: dict[str, list[dict]] = defaultdict(list)
        self._cache: dict[tuple, dict | None] = {}
        for offer in offers:
            self._index(offer)

    def _index(self, offer: dict) -> None:
        if offer.get("national_id"):
            self.by_national_id[offer["national_id"]].append(offer)
        # Keyed by the bare SIRET, as SOS records are (a place written with ``3`` + SIRET still matches).
        siret = siret_bare((offer.get("sos") or {}).get("association_siret"))
        if siret:
            self.by_siret[siret].append(offer)

    def add(self, offer: dict) -> None:
        self._index(offer)
        self._cache.clear()

    def match(self, record: SlotRecord) -> dict | None:
        """The offer of ``record``'s place, or ``None`` when the directory does not know that place."""
        place = record.place
        key = (record.search == "sos", record.roster_key, place.postcode, place.city, place.line, place.name)
        if key in self._cache:
            return self._cache[key]
        if record.search == "sos":
            candidates = self.by_siret.get(record.roster_key, [])
        else:
            candidates = self.by_national_id.get(record.practitioner_national_id or "", [])
        found = _best_place(candidates, postcode=place.postcode, city=place.city, line=place.line, name=place.name)
        self._cache[key] = found
        return found


def _house_number(line: str | None) -> str | None:
    first = fold(line).split(" ", 1)[0] if line else ""
    return first if first[:1].isdigit() else None


def _best_place(candidates: Sequence[dict], *, postcode: str | None, city: str | None, line: str | None,
                name: str | None) -> dict | None:
    """Same postcode (or same folded city when either has no postcode), then the closest street line
    (token overlap), then the name (SOS places). ``None`` when no candidate is in the same town."""
    city_folded = fold(city)
    same_town: list[dict] = []
    for offer in candidates:
        address = offer.get("address") or {}
        if postcode and address.get("postcode"):
            if address["postcode"] == postcode:
                same_town.append(offer)
        elif city_folded and (address.get("city_folded") or fold(address.get("city"))) == city_folded:
            same_town.append(offer)
    if not same_town:
        return None
    if len(same_town) == 1:
        return same_town[0]
    wanted = _line_tokens(line) | _line_tokens(name)
    number = _house_number(line)

    def score(offer: dict) -> tuple[bool, float, str]:
        offer_line = (offer.get("address") or {}).get("line")
        tokens = _line_tokens(offer_line) | _line_tokens(offer.get("name"))
        overlap = len(wanted & tokens) / max(len(wanted | tokens), 1)
        return number is not None and _house_number(offer_line) == number, overlap, str(offer.get("id"))

    return max(same_town, key=score)


def load_offer_book(es: Elasticsearch, *, prefix: str, vendor: VendorConfig) -> tuple[list[str], list[str], OfferBook]:
    """(practitioner ids, SOS association SIRETs, offers) of ``vendor``: the editors file's rosters plus
    the offers whose ``sas.vendor`` names it; the book holds every offer of those ids."""
    offers_alias = alias_name(prefix, "offers")
    practitioner_ids = list(vendor.practitioner_ids)
    sos_ids = list(vendor.sos_ids)
    marked = helpers.scan(es, index=offers_alias, size=5000, preserve_order=False,
                          query={"query": {"term": {"sas.vendor": vendor.name}},
                                 "_source": ["kind", "national_id", "sos.association_siret"]})
    for hit in marked:
        source = hit["_source"]
        if source.get("kind") == "sos":
            siret = siret_bare((source.get("sos") or {}).get("association_siret"))
            if siret and "sos" in vendor.use_cases:
                sos_ids.append(siret)
        elif source.get("national_id") and vendor.practitioner_search:
            practitioner_ids.append(source["national_id"])
    practitioner_ids = list(dict.fromkeys(practitioner_ids)) if vendor.practitioner_search else []
    sos_ids = list(dict.fromkeys(sos_ids)) if "sos" in vendor.use_cases else []
    offers: list[dict] = []
    for field_name, ids in (("national_id", practitioner_ids), ("sos.association_siret", sos_ids)):
        for start in range(0, len(ids), 10_000):
            chunk = ids[start:start + 10_000]
            if field_name == "sos.association_siret":
                # Places written in the wire form (vendor-only places of older runs) are found too.
                chunk = chunk + [siret_wire(siret) for siret in chunk]
            for hit in helpers.scan(es, index=offers_alias, size=5000, preserve_order=False,
                                    query={"query": {"terms": {field_name: chunk}}, "_source": _OFFER_FIELDS}):
                offers.append(hit["_source"])
    return practitioner_ids, sos_ids, OfferBook(offers)


class PlaceMaker:
    """Vendor-only places: an offer for a place the directory does not know, geocoded once."""

    def __init__(self, *, vendor: str, geocoder: Any | None) -> None:
        self.vendor = vendor
        self.geocoder = geocoder
        self.pending: list[dict] = []

    def make(self, record: SlotRecord) -> dict:
        place = record.place
        key = "|".join([record.search == "sos" and record.roster_key or record.practitioner_national_id or "",
                        place.postcode or "", fold(place.city), fold(place.line), fold(place.name)])
        offer_id = f"vendor-{self.vendor}-{hashlib.blake2b(key.encode(), digest_size=8).hexdigest()}"
        location = departement = insee = precision = None
        geo = self._geocode(place.line, place.postcode, place.city)
        if geo is not None:
            location = {"lat": geo.lat, "lon": geo.lon}
            departement, insee, precision = geo.departement, geo.insee, geo.precision
        elif place.postcode:
            departement = _departement_of_postcode(place.postcode)
        address = OfferAddress(
            line=place.line, postcode=place.postcode, city=place.city, city_folded=fold(place.city) or None,
            insee=insee, text=", ".join(p for p in (place.line, " ".join(x for x in (place.postcode, place.city) if x)) if p) or None,
        )
        if record.search == "sos":
            sos = record.sos or {}
            name = place.name or sos.get("association_name") or "SOS Médecins"
            offer = OfferDoc(
                id=offer_id, kind="sos", name=name, name_folded=fold(name), address=address,
                departement=departement, territory=territory_for_departement(departement) if departement else None,
                location=location, geo_precision=precision, phones=[p for p in [place.phone] if p],
                sos=OfferSos(association_siret=sos.get("association_siret"), association_name=sos.get("association_name"),
                             opening_hours=sos.get("opening_hours")),
                sas=OfferSas(participates=True, vendor=self.vendor), source="vendor", source_updated_at=utcnow(),
            )
        else:
            national_id = record.practitioner_national_id or ""
            display = " ".join(p for p in (record.practitioner_given, (record.practitioner_family or "").upper()) if p)
            name = display or national_id
            offer = OfferDoc(
                id=offer_id, kind="ps", national_id=national_id,
                national_id_type="rpps" if national_id.startswith("8") else "adeli" if national_id.startswith("0") else None,
                last_name=record.practitioner_family, first_name=record.practitioner_given, name=name,
                name_folded=fold(name), specialties=list(record.specialties), address=address,
                departement=departement, territory=territory_for_departement(departement) if departement else None,
                location=location, geo_precision=precision, phones=[p for p in [place.phone] if p],
                sas=OfferSas(participates=True, vendor=self.vendor), source="vendor", source_updated_at=utcnow(),
            )
        document = offer.model_dump(mode="json")
        self.pending.append(document)
        return document

    def _geocode(self, line: str | None, postcode: str | None, city: str | None):
        if self.geocoder is None:
            return None
        from connectors.directory.records import Address
        from connectors.geocoding import GeoFailure

        try:
            result = self.geocoder.geocode(Address(street=line or "", postcode=postcode or "", city=city or ""))
        except Exception as exc:  # noqa: BLE001 - a geocoder failure must not stop the harvest
            log.warning("geocoding %s %s failed: %s", postcode, city, exc)
            return None
        return None if isinstance(result, GeoFailure) else result


def _departement_of_postcode(postcode: str) -> str | None:
    try:
        from connectors.geocoding import departements_of_postcode

        options = departements_of_postcode(postcode)
        return options[0] if len(options) == 1 else None
    except (ImportError, ValueError, IndexError):
        return None


def build_geocoder(settings: Settings):
    """The directory's geocoder (communes gazetteer, BAN when configured); ``None`` without reference data."""
    try:
        from connectors.geocoding import build_geocoder as build
        from connectors.reference import load_communes

        communes = load_communes(settings.reference_data_dir)
    except Exception as exc:  # noqa: BLE001 - missing reference data: places are created without a point
        log.warning("no geocoder for vendor-only places (%s): they will have no location", exc)
        return None
    return build(communes=communes, ban_url=settings.geocoder_ban_url, ban_timeout_s=settings.geocoder_ban_timeout_s,
                 ban_cache_path=settings.geocoder_cache_path or settings.cache_dir / "geocode-ban.sqlite",
                 ban_min_score=settings.geocoder_ban_min_score)


# --------------------------------------------------------------------------------------------------
# Slot documents
# --------------------------------------------------------------------------------------------------

def _slot_static(record: SlotRecord, offer: dict) -> dict:
    """The part of a slot document shared by every slot of one place (practitioner, place, offer)."""
    place = record.place
    town = " ".join(p for p in (place.postcode, place.city) if p)
    name = " ".join(p for p in (record.practitioner_given, (record.practitioner_family or "").upper()) if p) or None
    return {
        "source": "vendor",
        "vendor": record.vendor,
        "use_case": record.search,
        "roster_key": record.roster_key,
        "practitioner_national_id": record.practitioner_national_id,
        "national_id_check_ok": record.national_id_check_ok,
        "practitioner_name": name,
        "offer_id": offer["id"],
        "offer_kind": offer.get("kind") or ("sos" if record.search == "sos" else "ps"),
        "sos": record.sos,
        "place": {
            "name": place.name,
            "address": ", ".join(p for p in (place.line, town) if p) or None,
            "phone": place.phone,
            "vendor_location_id": place.vendor_location_id,
            "structure_id": place.structure_id,
        },
        "location": offer.get("location"),
        "departement": offer.get("departement"),
        "territory": offer.get("territory"),
        # The search's ``sector`` filter reads it on the slot (the card shows the offer's).
        "convention_sector": offer.get("convention_sector"),
        "name_folded": offer.get("name_folded") or (fold(name) or None),
    }


def _slot_identity(record: SlotRecord) -> dict:
    """The first keys of a slot document (before the place part)."""
    return {"id": record.id, "vendor_slot_id": record.resource_id}


def _slot_own(record: SlotRecord, offer: dict) -> dict:
    """The keys of a slot document that belong to the slot itself (after the place part)."""
    start, end = record.start.isoformat(), record.end.isoformat()
    return {
        "start": start,
        "end": end,
        "date_range": {"gte": start, "lt": end},
        "duration_min": int((record.end - record.start).total_seconds() // 60),
        "types": record.types,
        "modes": record.modes,
        "motive": record.motive,
        "specialties": record.specialties or list(offer.get("specialties") or []),
        "specialty_texts": record.specialty_texts,
        "bookable": record.bookable,
        "booking_url": record.booking_url,
        "cpts": record.cpts,
    }


def slot_document(record: SlotRecord, offer: dict, *, static: dict | None = None) -> dict:
    """The slot document of ``record`` at ``offer`` — without the run-dependent fields (``harvested_at``,
    ``stale_since``) and the platform's own (``hidden``, ``booked_count``). ``static``: the place part
    (``_slot_static``) when the caller caches it. Keys always come in the same order, so that the
    serialisation can be hashed."""
    return {**_slot_identity(record), **(static if static is not None else _slot_static(record, offer)),
            **_slot_own(record, offer)}


def static_part_bytes(static: dict) -> bytes:
    """The serialised static part of slot documents (``_slot_static``), without its braces: spliced by
    ``slot_document_bytes`` into every document of the place instead of being serialised per slot."""
    return orjson.dumps(static)[1:-1]


def slot_document_bytes(record: SlotRecord, offer: dict, *, static_bytes: bytes) -> bytes:
    """``orjson.dumps(slot_document(record, offer))``, byte for byte, built from the place's serialised
    static part (``static_part_bytes``): the part shared by a place's slots is serialised once."""
    head = orjson.dumps(_slot_identity(record))
    return head[:-1] + b"," + static_bytes + b"," + orjson.dumps(_slot_own(record, offer))[1:]


def content_hash(document: dict | bytes) -> str:
    """Hash of a slot document's content. ``slot_document`` always builds its keys in the same order, so
    its serialisation is canonical without sorting (and is reused for the bulk body)."""
    raw = document if isinstance(document, bytes) else orjson.dumps(document)
    return hashlib.blake2b(raw, digest_size=10).hexdigest()


# --------------------------------------------------------------------------------------------------
# Bulk writing
# --------------------------------------------------------------------------------------------------

class BulkWriter:
    """Streams bulk requests from background threads (writing overlaps fetching and mapping).

    ``create`` conflicts (the slot exists outside the scanned window) are re-sent as partial updates.
    """

    def __init__(self, es: Elasticsearch, *, index: str, chunk: int, threads: int) -> None:
        self.es = es
        self.index = index
        self.chunk = max(chunk, 1)
        self._index_part = b'":{"_index":' + orjson.dumps(index) + b',"_id":'
        self._pool = ThreadPoolExecutor(max_workers=max(threads, 1), thread_name_prefix="bulk")
        self._in_flight = threading.BoundedSemaphore(max(threads, 1) * 2)
        self._lines: list[bytes] = []
        self._docs: dict[str, bytes] = {}      # create id → source line of the current chunk
        self._ops = 0
        #: Operations sent so far (creates, updates, deletes).
        self.written = 0
        self._futures: list[Future] = []
        self._lock = threading.Lock()
        self.results: Counter = Counter()
        self.errors: Counter = Counter()
        self.error_messages: list[str] = []

    def _action(self, op: str, doc_id: str) -> bytes:
        return b'{"' + op.encode() + self._index_part + orjson.dumps(doc_id) + b'}}'


    def create(self, doc_id: str, document: dict) -> None:
        source = orjson.dumps(document)
        self._lines += (self._action("create", doc_id), source)
        self._docs[doc_id] = source
        self._count()

    def create_raw(self, doc_id: str, source: bytes) -> None:
        """``create`` of an already serialised document."""
        self._lines += (self._action("create", doc_id), source)
        self._docs[doc_id] = source
        self._count()

    def update(self, doc_id: str, partial: dict) -> None:
        self._lines += (self._action("update", doc_id), orjson.dumps({"doc": partial}))
        self._count()

    def delete(self, doc_id: str) -> None:
        self._lines.append(self._action("delete", doc_id))
        self._count()

    def _count(self) -> None:
        self._ops += 1
        if self._ops >= self.chunk:
            self.flush()

    def flush(self) -> None:
        if not self._lines:
            return
        body = b"\n".join(self._lines) + b"\n"
        self.written += self._ops
        docs = self._docs
        self._lines, self._docs, self._ops = [], {}, 0
        self._in_flight.acquire()  # back-pressure: at most 2 requests per thread queued or running
        future = self._pool.submit(self._send, body, docs)
        future.add_done_callback(lambda _: self._in_flight.release())
        self._futures.append(future)

    def close(self) -> None:
        """Send what is buffered and wait for every request."""
        self.flush()
        for future in self._futures:
            future.result()
        self._futures.clear()
        self._pool.shutdown(wait=True)

    def _send(self, body: bytes, docs: dict[str, bytes]) -> None:
        try:
            response = self.es.bulk(operations=body, filter_path="errors,items.*.result,items.*.status,"
                                    "items.*._id,items.*.error.type,items.*.error.reason")
        except (ApiError, TransportError) as exc:
            with self._lock:
                self._record_error("bulk_request_failed", f"bulk request failed: {exc}", count=body.count(b"\n") // 2)
            return
        conflicts: list[str] = []
        with self._lock:
            for item in response.get("items", []):
                (op, result), = item.items()
                status = result.get("status", 0)
                if status < 300 or (op == "delete" and status == 404):
                    self.results[f"{op}:{result.get('result', 'ok')}"] += 1
                elif op == "create" and status == 409:
                    conflicts.append(result["_id"])
                else:
                    error = result.get("error") or {}
                    self._record_error(f"{op}_{error.get('type', status)}", f"{op} {result.get('_id')}: "
                                       f"{error.get('type')}: {str(error.get('reason'))[:200]}")
        if conflicts:
            lines: list[bytes] = []
            for doc_id in conflicts:
                lines += (self._action("update", doc_id), b'{"doc":' + docs[doc_id] + b'}')
            self._send(b"\n".join(lines) + b"\n", {})

    def _record_error(self, reason: str, message: str, *, count: int = 1) -> None:
        self.errors[reason] += count
        if len(self.error_messages) < _MAX_ERRORS:
            self.error_messages.append(message)


# --------------------------------------------------------------------------------------------------
# The harvester
# --------------------------------------------------------------------------------------------------

@dataclass
class _Existing:
    """The vendor's indexed slots of the window: id → (roster key, content hash, stale)."""

    by_id: dict[str, tuple[str | None, str | None, bool]] = field(default_factory=dict)
    by_key: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    #: Slots of answered batches that did not come back, deleted once every batch is in (the guard).
    to_delete: list[str] = field(default_factory=list)
    #: Hidden slots whose platform claim (a redirect booking with no INT_R03 report) has expired: the
    #: vendor listing them free again releases them (back to search).
    expired_claims: set[str] = field(default_factory=set)


class Harvester:
    """Harvests vendors into Elasticsearch. Long-lived (one per process): it keeps the vendors' circuit
    breakers and the geocoder between runs."""

    def __init__(self, *, es: Elasticsearch, settings: Settings, vendors: list[VendorConfig] | None = None,
                 breakers: BreakerBoard | None = None, geocoder: Any | None = None,
                 specialty_codes: dict[str, str] | None = None) -> None:
        self.es = es
        self.settings = settings
        self.prefix = settings.index_prefix
        self.vendors = vendors if vendors is not None else load_editors(settings.editors_file)
        self.breakers = breakers or BreakerBoard()
        self._geocoder = geocoder
        self._geocoder_ready = geocoder is not None
        self._geocoder_lock = threading.Lock()
        if specialty_codes is None:
            from connectors.directory.nomenclatures import load_specialties

            specialty_codes = specialty_lookup(load_specialties(settings.reference_data_dir).labels)
        self.specialty_codes = specialty_codes
        self.slots_alias = alias_name(self.prefix, "slots")
        tune_gc()

    # -- configuration -------------------------------------------------------------------------------

    def vendor(self, name: str) -> VendorConfig:
        return find_vendor(self.vendors, name)

    @property
    def geocoder(self):
        with self._geocoder_lock:
            if not self._geocoder_ready:
                self._geocoder = build_geocoder(self.settings)
                self._geocoder_ready = True
            return self._geocoder

    # -- one run -------------------------------------------------------------------------------------

    def run(self, vendor: VendorConfig | str, *, mode: Mode = "incremental", start: datetime | None = None,
            end: datetime | None = None, now: datetime | None = None) -> dict:
        """Harvest ``vendor`` over the window of ``mode`` (or [start, end] when given) and return the
        ``harvest_runs`` document written. Never raises for a vendor failure (it is in the document)."""
        if isinstance(vendor, str):
            vendor = self.vendor(vendor)
        now = now or utcnow()
        window = Window.for_mode(vendor, mode, now=now)
        if start is not None or end is not None:
            window = Window(mode, start or window.start, end or window.end)
        run_id = f"harvest-{vendor.name}-{now.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
        self._record_running(run_id, vendor, window, now)
        started = time.perf_counter()
        stats = RunStats()
        status = "failed"
        try:
            status = self._run(vendor, window, now, stats)
        except (ApiError, TransportError) as exc:
            stats.error("elasticsearch", f"Elasticsearch failed during the run: {exc}")
            ES_ERRORS.labels(type(exc).__name__).inc()
            log.exception("harvest of %s: Elasticsearch failure", vendor.name)
        except Exception as exc:  # noqa: BLE001 - a bug must not kill the scheduler; it is reported
            stats.error("internal", f"{type(exc).__name__}: {exc}")
            log.exception("harvest of %s failed", vendor.name)
        ended = utcnow()
        # A full sweep whose budget ran out during an outage asks for a catch-up once the breaker may
        # let a probe through again, instead of leaving days 3-7 stale until the next hourly sweep
        # (incremental runs come every few minutes anyway). The scheduler acts on it.
        catch_up_at = (ended + timedelta(seconds=vendor.breaker_reset_s)
                       if stats.retry_pending and window.mode == "full" else None)
        document = self._run_document(run_id, vendor, window, now, ended, time.perf_counter() - started, status, stats,
                                      catch_up_at=catch_up_at)
        try:
            self.es.index(index=alias_name(self.prefix, "harvest_runs"), id=run_id, document=document)
        except (ApiError, TransportError) as exc:
            log.error("harvest run %s could not be recorded: %s", run_id, exc)
        log.info("harvest %s %s: %s, %d read, %d created, %d updated, %d unchanged, %d deleted, %d stale, %.1fs",
                 vendor.name, window.mode, status, stats.read, stats.created, stats.updated, stats.unchanged,
                 stats.deleted, stats.stale_marked, document["duration_s"])
        _observe_run(vendor.name, status, document)
        return document

    def _run(self, vendor: VendorConfig, window: Window, now: datetime, stats: RunStats) -> str:
        practitioner_ids, sos_ids, book = load_offer_book(self.es, prefix=self.prefix, vendor=vendor)
        tasks: list[tuple[str, list[str]]] = []
        if vendor.practitioner_search:
            tasks += [(vendor.practitioner_search, b) for b in batches(practitioner_ids, vendor.batch_size)]
        if "sos" in vendor.use_cases:
            # SOS Médecins: at most ``sos_batch_size`` SIRETs per request (10, the functional spec).
            tasks += [("sos", b) for b in batches(sos_ids, vendor.sos_batch_size)]
        if not tasks:
            stats.error("empty_roster", f"{vendor.name}: nobody to ask for (no roster, no offer names this vendor)")
            return "failed"
        # No refresh here: the vendor's previous run refreshed the index when it ended (``finally``
        # below), and nothing else writes the fields the scan reads. A refresh per run start, with
        # several vendors writing, only cut their in-flight documents into small segments to merge.
        existing = self._existing(vendor, window, now)
        writer = BulkWriter(self.es, index=self.slots_alias, chunk=self.settings.harvest_bulk_chunk,
                            threads=self.settings.harvest_bulk_threads)
        places = PlaceMaker(vendor=vendor.name, geocoder=self.geocoder)
        harvested_at = now.isoformat()
        try:
            asyncio.run(self._fetch_and_write(vendor, window, tasks, book, places, existing, writer, stats,
                                              harvested_at))
            self._write_deletions(vendor, existing, writer, stats, harvested_at)
            self._delete_expired(vendor, now, writer, stats)
        finally:
            writer.close()
            # The slots index refreshes rarely on its own (30 s: indexing throughput); what a run wrote
            # or deleted is made visible to search at once instead (freshness).
            if writer.written:
                self.es.indices.refresh(index=self.slots_alias)
        stats.places_created = len(places.pending)
        for key, count in writer.results.items():
            if key.startswith("create:"):
                stats.created += count
        for reason, count in writer.errors.items():
            stats.errors[reason] += count
            if reason == "bulk_request_failed":
                ES_ERRORS.labels("bulk_request_failed").inc(count)
        for message in writer.error_messages:
            stats.error_messages.append(message) if len(stats.error_messages) < _MAX_ERRORS else None
        if stats.batches_failed == stats.batches:
            return "failed"
        if stats.batches_failed or writer.errors or stats.deletions_held:
            return "partial"
        return "success"

    def _existing(self, vendor: VendorConfig, window: Window, now: datetime) -> _Existing:
        existing = _Existing()
        query = {"bool": {"filter": [
            {"term": {"vendor": vendor.name}}, {"term": {"source": "vendor"}},
            {"range": {"start": {"gte": window.start.isoformat(), "lte": window.end.isoformat()}}},
        ]}}
        for hit in helpers.scan(self.es, index=self.slots_alias, size=10_000, preserve_order=False,
                                query={"query": query, "_source": False,
                                       "docvalue_fields": ["roster_key", "content_hash", "stale_since"]}):
            fields = hit.get("fields") or {}
            key = (fields.get("roster_key") or [None])[0]
            existing.by_id[hit["_id"]] = (key, (fields.get("content_hash") or [None])[0], "stale_since" in fields)
            if key is not None:
                existing.by_key[key].add(hit["_id"])
        # A second, separate query rather than one more docvalue field on the scan above: expired claims
        # are a handful at most (abandoned redirect bookings), the scan reads every slot of the window.
        claims = {"bool": {"filter": [
            {"term": {"vendor": vendor.name}}, {"term": {"hidden": True}},
            {"range": {"claim_expires_at": {"lte": now.isoformat()}}},
            {"range": {"start": {"gte": window.start.isoformat(), "lte": window.end.isoformat()}}},
        ]}}
        # One plain search, not a scroll: a run costs one request more; more than 10 000 expired claims
        # at one vendor would be released over several runs.
        hits = self.es.search(index=self.slots_alias, query=claims, size=10_000, source=False,
                              filter_path="hits.hits._id")
        existing.expired_claims.update(hit["_id"] for hit in (hits.get("hits") or {}).get("hits") or [])
        return existing

    async def _fetch_and_write(self, vendor: VendorConfig, window: Window, tasks: list[tuple[str, list[str]]],
                               book: OfferBook, places: PlaceMaker, existing: _Existing, writer: BulkWriter,
                               stats: RunStats, harvested_at: str) -> None:
        mapper = BundleMapper(vendor=vendor.name, specialty_codes=self.specialty_codes)
        # Everything after the first request counts against the run's budget (retries of batches that
        # failed while the vendor was unavailable included). Full sweeps only: an incremental run's
        # retry is the next incremental run, minutes later, and it must not hold the vendor's lease.
        deadline = time.monotonic() + (vendor.run_budget_s if window.mode == "full" else 0.0)
        quiet_retries = 0   # retry rounds while the breaker stayed closed (scattered failures)
        stats.batches = len(tasks)
        async with VendorClient(vendor, breakers=self.breakers) as client:
            async def one(search: str, batch: list[str]):
                try:
                    return search, batch, await client.search(search, ids=batch, start=window.start, end=window.end), None
                except VendorError as exc:
                    return search, batch, None, exc

            todo = tasks
            failed: list[tuple[list[str], VendorError]] = []
            while True:
                retry: list[tuple[str, list[str]]] = []
                pending = [asyncio.create_task(one(search, batch)) for search, batch in todo]
                for next_done in asyncio.as_completed(pending):
                    search, batch, answer, error = await next_done
                    if answer is not None:
                        try:
                            self._write_batch(vendor, search, batch, answer.pages, mapper, book, places, existing,
                                              writer, stats, harvested_at, window.mode)
                            continue
                        except BundleError as exc:
                            error = VendorError("malformed_bundle", f"{vendor.name}: {exc}")
                        except Exception as exc:  # noqa: BLE001 - one batch's bug must not stop the others
                            log.exception("harvest of %s: batch failed while mapping", vendor.name)
                            error = VendorError("mapping_failed", f"{vendor.name}: {type(exc).__name__}: {exc}")
                    # Unavailable vendor (breaker open, 5xx, timeouts): worth another try in this run.
                    # Refused or malformed answers would come back the same: final at once.
                    if isinstance(error, (CircuitOpen, VendorUnavailable)):
                        retry.append((search, batch))
                    failed.append((batch, error))
                if not retry:
                    break
                # Wait for the breaker to let a probe through, and only if the retry can still start
                # within the budget. When it did not open (scattered failures, each already retried
                # max_attempts times), one more round after a backoff, not a loop against a sick vendor.
                wait = await self.breakers.half_open_in(vendor)
                if not wait:
                    if quiet_retries:
                        break
                    quiet_retries += 1
                    wait = vendor.backoff_max_s
                wait += 0.05   # purgatory half-opens strictly after opened_at + ttl
                if time.monotonic() + wait > deadline:
                    stats.retry_pending = True
                    break
                await asyncio.sleep(wait)
                stats.batches_retried += len(retry)
                retried = {id(batch) for _, batch in retry}
                failed = [(batch, error) for batch, error in failed if id(batch) not in retried]
                todo = retry
            # Stale only what stayed failed at the end of the run (a batch harvested on retry is fresh).
            for batch, error in failed:
                self._batch_failed(batch, error, existing, writer, stats, harvested_at)
            stats.requests += client.requests
        if places.pending:
            self._write_places(places, stats)

    def _write_batch(self, vendor: VendorConfig, search: str, batch: list[str], pages: list[dict],
                     mapper: BundleMapper, book: OfferBook, places: PlaceMaker, existing: _Existing,
                     writer: BulkWriter, stats: RunStats, harvested_at: str, mode: Mode = "incremental") -> None:
        """Write the whole truth of one batch: create / update / skip what came back, delete the rest.

        ``content_hash`` is ``<source hash>.<document hash>``. Incremental runs skip a slot whose source
        (the vendor's Slot, its Schedule graph and CPTS) is unchanged without mapping it again; full
        sweeps map everything and compare the documents, which also picks up directory changes (an offer
        that moved, a new geocode) for slots the vendor did not touch.
        """
        prefix = f"{vendor.name}:"
        known_sources: dict[str, str] | None = None
        if mode == "incremental":
            known_sources = {}
            for key in batch:
                for slot_id in existing.by_key.get(key, ()):
                    stored = existing.by_id[slot_id][1]
                    if stored:
                        known_sources[slot_id[len(prefix):]] = stored.split(".", 1)[0]
        # Map every page first: a broken page makes the whole batch a failure, never a partial truth.
        records: dict[str, SlotRecord] = {}
        seen: set[str] = set()
        slots_seen = 0
        for page in pages:
            result = mapper.map_bundle(page, search=search, requested=batch, known_sources=known_sources)
            stats.read += result.slots_seen
            slots_seen += result.slots_seen
            stats.rejected.update(result.rejected)
            stats.flags.update(result.flags)
            for record in result.records:
                records[record.id] = record
            seen.update(prefix + resource_id for resource_id in result.unchanged)
        for slot_id in seen - records.keys():
            if existing.by_id[slot_id][2]:
                writer.update(slot_id, {"stale_since": None})
                stats.updated += 1
            else:
                stats.unchanged += 1
        statics: dict[tuple, tuple[dict, dict]] = {}
        for slot_id, record in records.items():
            # Slots of one schedule share their Place object: match and build the place part once.
            cache_key = (id(record.place), record.roster_key, record.practitioner_national_id)
            cached = statics.get(cache_key)
            if cached is None:
                offer = book.match(record)
                if offer is None:
                    offer = places.make(record)
                    book.add(offer)
                    if offer.get("location") is None:
                        stats.flags["place_not_geocoded"] += 1
                static = _slot_static(record, offer)
                cached = statics[cache_key] = (offer, static, static_part_bytes(static))
            offer, static, static_bytes = cached
            raw = slot_document_bytes(record, offer, static_bytes=static_bytes)
            digest = f"{record.source_hash}.{content_hash(raw)}"
            known = existing.by_id.get(slot_id)
            if known is None:
                # The serialised content plus the run's fields, without serialising the document twice.
                writer.create_raw(slot_id, raw[:-1] + b',"content_hash":"' + digest.encode() + b'","harvested_at":"'
                                  + harvested_at.encode() + b'","stale_since":null,"hidden":false,"booked_count":0}')
            elif known[1] is None or known[1].split(".", 1)[-1] != digest.split(".", 1)[1]:
                # Partial update: ``hidden`` / ``booked_count`` belong to the platform, never overwritten.
                document = slot_document(record, offer, static=static)
                document.update(content_hash=digest, harvested_at=harvested_at, stale_since=None)
                writer.update(slot_id, document)
                stats.updated += 1
            elif known[1] != digest or known[2]:
                # Same document, new source hash (e.g. a vendor-side field we do not keep), or stale.
                writer.update(slot_id, {"content_hash": digest, "stale_since": None})
                stats.updated += 1 if known[2] else 0
                stats.unchanged += 0 if known[2] else 1
            else:
                stats.unchanged += 1
        if existing.expired_claims:
            # The vendor still lists these claimed slots free and nobody reported booking them (INT_R03)
            # within the lease: the booking was abandoned, the slot goes back to search.
            for slot_id in existing.expired_claims & (records.keys() | seen):
                writer.update(slot_id, {"hidden": False, "claim_expires_at": None, "claimed_by": None})
                stats.flags["claim_released"] += 1
        indexed = 0
        gone: list[str] = []
        for key in batch:
            for slot_id in existing.by_key.get(key, ()):
                indexed += 1
                if slot_id not in records and slot_id not in seen:
                    gone.append(slot_id)
        if not gone:
            return
        total = pages[0].get("total") if pages else None
        settings = self.settings
        if isinstance(total, int) and total > slots_seen:
            # The answer contradicts itself (more matches announced than Slots sent): not a truth to delete by.
            self._hold(gone, "total_mismatch", existing, writer, stats, harvested_at)
        elif len(gone) >= settings.harvest_mass_delete_min and len(gone) > settings.harvest_mass_delete_share * indexed:
            self._hold(gone, "batch_mass_deletion", existing, writer, stats, harvested_at)
        else:
            existing.to_delete.extend(gone)

    def _hold(self, slot_ids: list[str], reason: str, existing: _Existing, writer: BulkWriter, stats: RunStats,
              now_iso: str) -> None:
        """Mass-deletion guard: keep ``slot_ids`` and mark them stale (once) instead of deleting them."""
        stats.deletions_held += len(slot_ids)
        stats.alerts[reason] += len(slot_ids)
        for slot_id in slot_ids:
            if not existing.by_id[slot_id][2]:
                writer.update(slot_id, {"stale_since": now_iso})
                stats.stale_marked += 1

    def _write_deletions(self, vendor: VendorConfig, existing: _Existing, writer: BulkWriter, stats: RunStats,
                         now_iso: str) -> None:
        """The run's deletions, unless together they wipe much more than usual of what the vendor had
        indexed in the window (many small batches each under the per-batch minimum)."""
        gone, settings = existing.to_delete, self.settings
        if len(gone) >= settings.harvest_mass_delete_min and len(gone) > settings.harvest_mass_delete_share * len(existing.by_id):
            log.warning("harvest of %s: %d of %d slots would be deleted; held and marked stale", vendor.name,
                        len(gone), len(existing.by_id))
            self._hold(gone, "run_mass_deletion", existing, writer, stats, now_iso)
            return
        for slot_id in gone:
            writer.delete(slot_id)
        stats.deleted += len(gone)

    def _batch_failed(self, batch: list[str], error: VendorError, existing: _Existing, writer: BulkWriter,
                      stats: RunStats, now_iso: str) -> None:
        """Keep the batch's slots (never wipe on failure) and mark them stale from now, once."""
        stats.batches_failed += 1
        stats.error(error.reason, error.message)
        for key in batch:
            for slot_id in existing.by_key.get(key, ()):
                if not existing.by_id[slot_id][2]:
                    writer.update(slot_id, {"stale_since": now_iso})
                    stats.stale_marked += 1

    def _delete_expired(self, vendor: VendorConfig, now: datetime, writer: BulkWriter, stats: RunStats) -> None:
        """Slots of the vendor already over: nobody can book them any more."""
        query = {"bool": {"filter": [{"term": {"vendor": vendor.name}}, {"term": {"source": "vendor"}},
                                     {"range": {"end": {"lte": now.isoformat()}}}]}}
        for hit in helpers.scan(self.es, index=self.slots_alias, size=10_000, preserve_order=False,
                                query={"query": query, "_source": False}):
            writer.delete(hit["_id"])
            stats.expired_deleted += 1

    def _write_places(self, places: PlaceMaker, stats: RunStats) -> None:
        offers_alias = alias_name(self.prefix, "offers")
        actions = ({"_op_type": "create", "_index": offers_alias, "_id": doc["id"], "_source": doc}
                   for doc in places.pending)
        for ok, item in helpers.streaming_bulk(self.es, actions, chunk_size=1000, raise_on_error=False,
                                               raise_on_exception=False):
            if not ok:
                result = next(iter(item.values()))
                if result.get("status") != 409:  # already created by an earlier run: fine
                    stats.error("place_write_failed", f"vendor-only place {result.get('_id')}: {result.get('error')}")

    def _record_running(self, run_id: str, vendor: VendorConfig, window: Window, started_at: datetime) -> None:
        """The run's document, ``running`` until its end overwrites it: a run killed meanwhile leaves it,
        and the next run marks it ``interrupted`` (``mark_interrupted_runs``) instead of no trace at all."""
        document = HarvestRunDoc(id=run_id, kind="harvest", vendor=vendor.name, mode=window.mode,
                                 started_at=started_at, status="running").model_dump(mode="json")
        try:
            self.es.index(index=alias_name(self.prefix, "harvest_runs"), id=run_id, document=document)
        except (ApiError, TransportError) as exc:
            log.error("harvest run %s: its start could not be recorded: %s", run_id, exc)

    def _run_document(self, run_id: str, vendor: VendorConfig, window: Window, started_at: datetime,
                      ended_at: datetime, duration_s: float, status: str, stats: RunStats, *,
                      catch_up_at: datetime | None = None) -> dict:
        reasons = Counter(stats.rejected)
        for flag, count in stats.flags.items():
            reasons[f"flag:{flag}"] += count
        for error, count in stats.errors.items():
            reasons[f"error:{error}"] += count
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
            unchanged=stats.unchanged, rejected=sum(stats.rejected.values()),
            rejected_by_reason=[ReasonCount(reason=r, count=c) for r, c in sorted(reasons.items())],
            errors=messages[:_MAX_ERRORS], stale_marked=stats.stale_marked, deletions_held=stats.deletions_held,
            alerts=sorted(stats.alerts), batches=stats.batches, batches_failed=stats.batches_failed,
            batches_retried=stats.batches_retried, catch_up_at=catch_up_at,
        ).model_dump(mode="json")


def _observe_run(vendor: str, status: str, document: dict) -> None:
    """Per-vendor Prometheus figures of one run (the ``harvest_runs`` document stays the record)."""
    HARVEST_RUNS.labels(vendor, status).inc()
    HARVEST_DURATION.labels(vendor).observe(document["duration_s"])
    for action, key in (("upserted", "upserted"), ("deleted", "deleted"), ("rejected", "rejected"),
                        ("stale", "stale_marked"), ("unchanged", "unchanged"), ("held", "deletions_held")):
        HARVEST_SLOTS.labels(vendor, action).inc(document.get(key) or 0)
    if status == "success":
        HARVEST_LAST_SUCCESS.labels(vendor).set(time.time())


def run_harvest(*, es: Elasticsearch, settings: Settings, vendor: str | None = None, mode: Mode = "incremental",
                harvester: Harvester | None = None) -> list[dict]:
    """One harvest of ``vendor`` (or of every enabled vendor, one after the other); the run documents."""
    harvester = harvester or Harvester(es=es, settings=settings)
    if not harvester.vendors:
        raise ConfigurationError("no vendor configured: set SAS_EDITORS_FILE to an editors file")
    targets = [harvester.vendor(vendor)] if vendor else [v for v in harvester.vendors if v.enabled]
    return [harvester.run(target, mode=mode) for target in targets]


def iter_vendor_names(vendors: Iterable[VendorConfig]) -> Iterator[str]:
    for vendor in vendors:
        if vendor.enabled:
            yield vendor.name


def mark_interrupted_runs(es: Elasticsearch, *, prefix: str, vendor: str, now: datetime | None = None) -> int:
    """Mark ``interrupted`` every ``running`` harvest document of ``vendor``; returns how many.

    Call it only while holding the vendor's run lease: no other run of the vendor can then be going on,
    so a ``running`` document is the trace of a run that died (killed, machine lost) before its end."""
    ended = (now or utcnow()).isoformat()
    alias = alias_name(prefix, "harvest_runs")
    message = "interrupted: the run ended without recording its outcome (process killed or lost); its lease expired"
    count = 0
    try:
        # Search and compare-and-set updates (a handful of documents): no dependency on the reindex
        # module that ``_update_by_query`` needs.
        es.indices.refresh(index=alias)
        hits = es.search(index=alias, size=100, seq_no_primary_term=True, _source=["errors"], query={
            "bool": {"filter": [{"term": {"kind": "harvest"}}, {"term": {"vendor": vendor}},
                                {"term": {"status": "running"}}]}})["hits"]["hits"]
        for hit in hits:
            errors = [*(hit["_source"].get("errors") or []), message][:_MAX_ERRORS]
            try:
                es.update(index=hit["_index"], id=hit["_id"], if_seq_no=hit["_seq_no"],
                          if_primary_term=hit["_primary_term"],
                          doc={"status": "interrupted", "ended_at": ended, "errors": errors})
                count += 1
            except ConflictError:
                pass  # rewritten meanwhile: not ours to mark
    except (ApiError, TransportError) as exc:
        log.error("harvest runs of %s: interrupted runs could not be marked: %s", vendor, exc)
    if count:
        log.warning("harvest of %s: %d earlier run(s) marked interrupted", vendor, count)
    return count
