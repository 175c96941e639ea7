"""Directory load: national files → offer documents in the ``offers`` index.

The pipeline is an ordered list of small generator stages, each counting what it skips, with a reason,
in the run summary::

    read (connectors) → triage (rejections / remarks counted) → geocode → documents → dedupe
      → sample validation → bulk actions → bulk (parallel_bulk, update + doc_as_upsert)

Idempotence: each offer has a stable id (``ps-<national id>-<structure technical id>``,
``cpts-<FINESS>``, ``sos-<technical id>``…) and a fingerprint of its content (``content_hash``). A
**full** load first reads the fingerprints already in the index (a doc-values scan), sends only the
documents that are new or changed, and then deletes by id the offers of the loaded sources that the
files no longer have — except those a rejected line names (by national id or place), and never more
than ``SAS_DIRECTORY_MAX_DELETE_SHARE`` of them (beyond, the load fails and deletes nothing); the
harvested slots of deleted offers go with them. A second load of the same files writes nothing and every ``_version`` stays as it
was. An **incremental** load never deletes and writes ``update`` + ``doc_as_upsert``, for which
Elasticsearch itself answers ``noop`` when nothing changed. No "loaded at" time goes in the document for
that reason; the extraction date of the file is the document's ``source_updated_at``. The index refresh
is switched off during a full load and restored after. Each run is recorded as a ``harvest_runs``
document (``kind="directory"``).

Memory: files are streamed line by line; what a run holds is one entry per offer (the ids it produced,
and on a full load the fingerprints read from the index), about 250 bytes each — some 500 MB for the
two million lines of the real national extraction, 80 MB for the 300,000-place benchmark.

SAS participation is not in the national files: it is applied from the companion file when one is given
(``--participation``); without it the ``sas`` block of existing offers is left untouched (partial
update), since in production it comes from the platform's own registrations.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
import uuid
from functools import lru_cache
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import orjson
from elasticsearch import Elasticsearch, helpers

from connectors.addresses import address_key, street_key
from connectors.directory.finess import read_finess, stock_date
from connectors.directory.nomenclatures import Specialties, load_specialties
from connectors.directory.participation import ParticipationTable, SasParticipation, read_participation
from connectors.directory.records import PracticeRecord, Rejection, Remark, StructureRecord
from connectors.directory.rpps import extraction_date, open_extraction, read_rpps
from connectors.geocoding import GeoFailure, Geocoder, GeoResult, build_geocoder, departements_of_postcode
from connectors.reference import load_communes
from indexer.addresses import AddressLocator
from mappings.offers import OfferDoc
from mappings.registry import alias_name, spec
from sas_core.errors import ConfigurationError, DataQualityError
from sas_core.settings import Settings
from sas_core.territories import territory_for_departement
from sas_core.text import fold

log = logging.getLogger(__name__)

#: Remarks that stand for a whole line read (the others annotate a line already counted).
_LINE_REMARKS = {"merged_line", "blank_line", "other_category", "position"}
_SAFE_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_SOS_PREFIX = "sos medecins"
#: Names, cities and structure names repeat a lot: fold each distinct one once.
_fold = lru_cache(maxsize=1 << 18)(fold)
#: Validate the first documents and then one in this many (full validation costs too much per doc).
_VALIDATE_FIRST, _VALIDATE_EVERY = 200, 5000


# --------------------------------------------------------------------------------------------------
# Summary
# --------------------------------------------------------------------------------------------------

@dataclass
class LoadSummary:
    """What one directory load did (printed by the CLI, stored as a ``harvest_runs`` document)."""

    run_id: str
    mode: str                                   # full | incremental
    sources: dict[str, str] = field(default_factory=dict)
    started_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    ended_at: datetime | None = None
    lines_read: int = 0
    places: int = 0                             # offer documents built
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    #: Offers absent from the file but kept: a rejected line of this load names their professional.
    kept_rejected: int = 0
    #: Rejected lines whose national id could not be read (their offers are only protected by the cap).
    rejected_unkeyed: int = 0
    #: Harvested slots removed because the offer they belonged to was deleted by this load.
    slots_removed: int = 0
    failed: int = 0                             # refused by Elasticsearch (see rejected_by_reason)
    rejected_by_reason: Counter = field(default_factory=Counter)
    not_geocoded_by_reason: Counter = field(default_factory=Counter)
    precision: Counter = field(default_factory=Counter)
    remarks: Counter = field(default_factory=Counter)
    kinds: Counter = field(default_factory=Counter)
    geocoder: dict = field(default_factory=dict)
    status: str = "running"
    error: str | None = None

    @property
    def rejected(self) -> int:
        return sum(self.rejected_by_reason.values())

    @property
    def not_geocoded(self) -> int:
        return sum(self.not_geocoded_by_reason.values())

    @property
    def indexed(self) -> int:
        """Documents written (created or changed)."""
        return self.created + self.updated

    @property
    def duration_s(self) -> float:
        end = self.ended_at or datetime.now(timezone.utc)
        return max((end - self.started_at).total_seconds(), 1e-9)

    @property
    def places_per_s(self) -> float:
        return self.places / self.duration_s

    @property
    def rejected_share(self) -> float:
        return self.rejected / self.lines_read if self.lines_read else 0.0

    def to_dict(self) -> dict:
        return {
            "run_id": self.run_id,
            "mode": self.mode,
            "status": self.status,
            "error": self.error,
            "sources": self.sources,
            "lines_read": self.lines_read,
            "places": self.places,
            "kinds": dict(sorted(self.kinds.items())),
            "indexed": self.indexed,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "deleted": self.deleted,
            "kept_rejected": self.kept_rejected,
            "rejected_unkeyed": self.rejected_unkeyed,
            "slots_removed": self.slots_removed,
            "failed": self.failed,
            "rejected": self.rejected,
            "rejected_by_reason": dict(sorted(self.rejected_by_reason.items())),
            "not_geocoded": self.not_geocoded,
            "not_geocoded_by_reason": dict(sorted(self.not_geocoded_by_reason.items())),
            "geo_precision": dict(sorted(self.precision.items())),
            "remarks": dict(sorted(self.remarks.items())),
            "geocoder": self.geocoder,
            "started_at": self.started_at.isoformat(),
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "duration_s": round(self.duration_s, 3),
            "places_per_s": round(self.places_per_s, 1),
        }


# --------------------------------------------------------------------------------------------------
# Run context
# --------------------------------------------------------------------------------------------------

@dataclass
class _SosPlace:
    offer_id: str
    record: PracticeRecord
    geo: GeoResult | GeoFailure
    members: set[str] = field(default_factory=set)


@dataclass
class _Run:
    settings: Settings
    summary: LoadSummary
    alias: str
    geocoder: Geocoder
    specialties: Specialties
    participation: ParticipationTable | None
    source_dates: dict[str, str | None]
    threshold: float
    min_lines: int
    seen: set[str] = field(default_factory=set)
    sos_places: dict[str, _SosPlace] = field(default_factory=dict)
    finess_members: dict[str, set[str]] = field(default_factory=dict)
    cpts_names: dict[str, str] = field(default_factory=dict)
    validated: int = 0
    cpts_members: Counter | None = None
    #: National ids named by rejected lines: their offers are not deletion candidates in this load.
    protected: set[str] = field(default_factory=set)
    #: Structure technical ids named by rejected lines (their key may be the broken part): same.
    protected_places: set[str] = field(default_factory=set)
    #: Full loads: id → (content_hash, participation_hash, source) of every offer before the load.
    known: dict[str, tuple[str | None, str | None, str | None]] | None = None
    #: The national address base in the ``addresses`` index (None when it is empty or switched off).
    locator: AddressLocator | None = None


def _departement(value: str) -> str:
    value = value.strip().upper()
    return value.zfill(2) if value.isdigit() and len(value) < 2 else value


def _hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


def practice_offer_id(record: PracticeRecord) -> str:
    """``ps-<national id>-<structure technical id>`` (an address hash when there is no technical id)."""
    place = record.technical_id
    if not place or not _SAFE_ID.match(place):
        place = "a" + _hash(record.place_key())
    return f"ps-{record.national_id}-{place}"


def sos_offer_id(record: PracticeRecord) -> str:
    place = record.technical_id
    if not place or not _SAFE_ID.match(place):
        place = "a" + _hash(record.place_key())
    return f"sos-{place}"


def is_sos_place(record: PracticeRecord) -> bool:
    """SOS Médecins fixed consultation places: ``Raison sociale site`` starting "SOS MEDECINS"."""
    name = record.structure_name
    return name[:3].upper() == "SOS" and _fold(name).startswith(_SOS_PREFIX)


# --------------------------------------------------------------------------------------------------
# Stages
# --------------------------------------------------------------------------------------------------

def _triage(run: _Run, items: Iterable) -> Iterator[PracticeRecord | StructureRecord]:
    """Count rejections and remarks, pass records on; stop early on a clearly broken file."""
    s = run.summary
    check_every = 5000
    next_check = max(run.min_lines, check_every)
    for item in items:
        cls = type(item)
        if cls is PracticeRecord or cls is StructureRecord:
            s.lines_read += 1
            yield item
        elif cls is Rejection:
            s.lines_read += 1
            s.rejected_by_reason[item.reason] += 1
            if item.key:
                run.protected.add(item.key)
            if item.place:
                run.protected_places.add(item.place)
            if not (item.key or item.place):
                s.rejected_unkeyed += 1
        elif cls is Remark:
            if item.reason in _LINE_REMARKS:
                s.lines_read += 1
            s.remarks[item.reason] += 1
        if s.lines_read >= next_check:
            next_check += check_every
            if s.rejected_share > run.threshold:
                raise DataQualityError(_threshold_message(s, run.threshold, early=True))


def _geocode(run: _Run, records: Iterable) -> Iterator[tuple]:
    """Attach a position (or the reason there is none) to each record: the commune first (gazetteer, or
    BAN's API when configured), then, in batches, the address in the ``addresses`` index."""
    geocoder = run.geocoder
    batch: list[tuple] = []
    size = max(1, run.settings.addresses_lookup_batch)
    for record in records:
        if type(record) is StructureRecord and record.lat is not None:
            geo = GeoResult(record.lat, record.lon, "address", "finess", record.address.insee or None,
                            record.address.postcode or None, record.address.city or None,
                            record.departement or None)
        else:
            geo = geocoder.geocode(record.address, departement=_departement(record.departement))
        if run.locator is None:
            yield record, geo
            continue
        batch.append((record, geo))
        if len(batch) >= size:
            yield from _at_addresses(run, batch)
            batch = []
    if batch:
        yield from _at_addresses(run, batch)


def _match_keys(record, geo) -> tuple[str, str]:
    """(address key, street key) of a record placed at its commune's centroid; empty when it has none."""
    if type(geo) is not GeoResult or geo.source != "gazetteer" or geo.precision != "municipality" or not geo.insee:
        return "", ""
    a = record.address
    if not a.street:
        return "", ""
    street = f"{a.street_type} {a.street}" if a.street_type else a.street
    return address_key(geo.insee, street, a.number, a.repetition), street_key(geo.insee, street)


def _at_addresses(run: _Run, batch: list[tuple]) -> Iterator[tuple]:
    """Refine a batch's commune-level points to the address (number + street matched, ``address``) or
    the street (``street``); what the base does not have stays at the commune centroid."""
    keys = [_match_keys(record, geo) for record, geo in batch]
    numbers, streets = run.locator.lookup(address_keys={k[0] for k in keys if k[0]},
                                          street_keys={k[1] for k in keys if k[1]})
    stats = run.geocoder.stats
    for (record, geo), (a_key, s_key) in zip(batch, keys):
        if not s_key:
            yield record, geo
            continue
        hit, precision = numbers.get(a_key) if a_key else None, "address"
        if hit is None:
            hit, precision = streets.get(s_key), "street"
        if hit is None:
            stats["addresses_no_match"] += 1
            yield record, geo
            continue
        stats[f"addresses_{precision}"] += 1
        yield record, GeoResult(hit.lat, hit.lon, precision, "addresses", geo.insee, hit.postcode or geo.postcode,
                                geo.city, geo.departement)


def _documents(run: _Run, pairs: Iterable[tuple]) -> Iterator[dict]:
    """Offer documents: one per practice record, then the SOS places and the FINESS structures."""
    structures: list[tuple[StructureRecord, GeoResult | GeoFailure]] = []
    for record, geo in pairs:
        if type(record) is StructureRecord:
            structures.append((record, geo))  # emitted last: their member counts need the RPPS lines
            continue
        doc = _practice_doc(run, record, geo)
        if record.finess:
            run.finess_members.setdefault(record.finess, set()).add(record.national_id)
        if is_sos_place(record):
            offer_id = sos_offer_id(record)
            place = run.sos_places.get(offer_id)
            if place is None:
                place = run.sos_places[offer_id] = _SosPlace(offer_id, record, geo)
            place.members.add(record.national_id)
        yield doc
    for place in run.sos_places.values():
        yield _sos_doc(run, place)
    for record, geo in structures:
        yield _structure_doc(run, record, geo)


def _dedupe(run: _Run, docs: Iterable[dict]) -> Iterator[dict]:
    """Remember every offer id of the run (for the full load's deletions); count repeated ids.

    A repeated id means the same (professional, place) appeared twice apart in the file (it is sorted
    by identifier, so its lines should be consecutive): the later one wins, and it is reported.
    """
    seen = run.seen
    for doc in docs:
        offer_id = doc["id"]
        if offer_id in seen:
            run.summary.remarks["duplicate_place_not_contiguous"] += 1
        else:
            seen.add(offer_id)
            run.summary.places += 1
            run.summary.kinds[doc["kind"]] += 1
        yield doc


def _validate_sample(run: _Run, docs: Iterable[dict]) -> Iterator[dict]:
    """Check a sample of documents against the pydantic model (the strict mapping checks the rest)."""
    count = 0
    for doc in docs:
        count += 1
        if count <= _VALIDATE_FIRST or count % _VALIDATE_EVERY == 0:
            OfferDoc.model_validate(doc)  # a failure here is a bug in the builders: let it surface
            run.validated += 1
        yield doc


def _fingerprint(value) -> str:
    # The builders always produce the keys in the same order, so the plain serialisation is stable.
    return hashlib.blake2b(orjson.dumps(value), digest_size=10).hexdigest()


def _actions(run: _Run, docs: Iterable[dict]) -> Iterator[tuple[str, str, bytes | None]]:
    """Bulk actions for the documents that changed.

    Each document carries two fingerprints: ``content_hash`` over the directory fields and, when the
    participation file is part of the load, ``participation_hash`` over ``sas`` + ``convention_sector``.
    On a full load the fingerprints already in the index are known (``run.known``): an unchanged
    document is not sent at all and a new one is a plain ``index`` write. A changed one is an ``index``
    write of the whole document when the participation file is part of the load, else an ``update``
    (``doc_as_upsert``) that leaves the platform's own ``sas`` block untouched. Incremental loads, which
    do not read the fingerprints first, send ``update`` + ``doc_as_upsert`` and let Elasticsearch
    answer ``noop`` for unchanged documents.
    """
    known = run.known
    whole = run.participation is not None
    dumps = orjson.dumps
    unchanged = 0
    for doc in docs:
        doc_id = doc["id"]
        if whole:
            # SOS opening hours come from the participation file too.
            sos = doc["sos"]
            hours = sos.pop("opening_hours", None) if sos is not None else None
            sas, sector = doc.pop("sas"), doc.pop("convention_sector")
            content = _fingerprint(doc)
            participation = _fingerprint((sas, sector, hours))
            doc["sas"], doc["convention_sector"] = sas, sector
            if sos is not None:
                sos["opening_hours"] = hours
        else:
            content, participation = _fingerprint(doc), None
        previous = known.get(doc_id) if known is not None else None
        if previous is not None and previous[0] == content and (not whole or previous[1] == participation):
            unchanged += 1
            continue
        doc["content_hash"] = content
        if whole:
            doc["participation_hash"] = participation
        if known is not None and (previous is None or whole):
            # Nulls are kept: stored documents then look the same whichever way they were written,
            # which is what lets an ``update`` of an unchanged document be a ``noop``.
            yield "index", doc_id, dumps(doc)
        else:
            yield "update", doc_id, dumps({"doc": doc, "doc_as_upsert": True})
    run.summary.unchanged += unchanged


def _known_documents(es: Elasticsearch, alias: str) -> dict[str, tuple[str | None, str | None, str | None]]:
    """Every offer id in the index with its fingerprints and source (doc values only: a fast scan)."""
    known: dict[str, tuple[str | None, str | None, str | None]] = {}
    for hit in helpers.scan(es, index=alias, size=10_000, preserve_order=False,
                            query={"query": {"match_all": {}}, "_source": False,
                                   "docvalue_fields": ["content_hash", "participation_hash", "source"]}):
        fields = hit.get("fields") or {}
        known[hit["_id"]] = ((fields.get("content_hash") or [None])[0],
                             (fields.get("participation_hash") or [None])[0],
                             (fields.get("source") or [None])[0])
    return known


def _bulk(run: _Run, es: Elasticsearch, actions: Iterable[tuple[str, str, bytes | None]]) -> None:
    """Send the actions in chunks on ``directory_bulk_threads`` threads; count results."""
    alias = run.alias
    s = run.summary

    index_json = orjson.dumps(alias).decode()

    def expand(action: tuple[str, str, bytes | None]):
        # The action line is written as bytes directly (the client passes bytes through): offer ids
        # are plain [A-Za-z0-9_.-] (see practice_offer_id), so no escaping is needed.
        op, doc_id, body = action
        return f'{{"{op}":{{"_index":{index_json},"_id":"{doc_id}"}}}}'.encode(), body

    client = es.options(request_timeout=max(60.0, run.settings.es_request_timeout_s))
    results = helpers.parallel_bulk(
        client,
        actions,
        thread_count=max(1, run.settings.directory_bulk_threads),
        chunk_size=run.settings.directory_bulk_chunk,
        max_chunk_bytes=50 * 1024 * 1024,
        queue_size=max(1, run.settings.directory_bulk_threads),
        expand_action_callback=expand,
        raise_on_error=False,
        raise_on_exception=True,
        filter_path="errors,items.*.status,items.*.result,items.*.error.type",
    )
    for ok, item in results:
        (op, info), = item.items()
        result = info.get("result")
        if not ok:
            s.failed += 1
            error = info.get("error") or {}
            reason = error.get("type", "error") if isinstance(error, dict) else str(error)
            s.rejected_by_reason[f"index_error:{reason}"] += 1
            continue
        if op == "delete":
            s.deleted += result == "deleted"
        elif result == "created":
            s.created += 1
        elif result == "updated":
            s.updated += 1
        elif result == "noop":
            s.unchanged += 1


# --------------------------------------------------------------------------------------------------
# Document builders
# --------------------------------------------------------------------------------------------------

def _address(record, geo) -> dict:
    a = record.address
    located = geo if type(geo) is GeoResult else None
    city = a.city or (a.cedex_line[6:].strip() if a.cedex_line[:5].isdigit() else "") or (located.city if located else "")
    return {
        "line": a.street_line() or None,
        "complement": " ".join(x for x in (a.complement, a.distribution) if x) or None,
        "postcode": a.postcode or (located.postcode if located else None) or None,
        "city": city or None,
        "city_folded": _fold(city) or None,
        "insee": a.insee or (located.insee if located else None) or None,
        "cedex": a.cedex_line or None,
        "text": a.one_line() or None,
    }


def _place(run: _Run, record, geo, doc: dict) -> None:
    """Département, territory, position and precision (or the reason there is none)."""
    s = run.summary
    if type(geo) is GeoResult:
        departement = geo.departement or _departement(record.departement)
        doc["location"] = {"lat": geo.lat, "lon": geo.lon}
        doc["geo_precision"] = geo.precision
        doc["geo_source"] = geo.source
        s.precision[geo.precision] += 1
    else:
        departement = _departement(record.departement) or geo.departement or ""
        if not departement and record.address.postcode:
            candidates = departements_of_postcode(record.address.postcode)
            departement = candidates[0] if len(candidates) == 1 else ""
        doc["location"] = None
        doc["geo_precision"] = None
        doc["geo_source"] = None
        s.not_geocoded_by_reason[geo.reason] += 1
    doc["departement"] = departement or None
    doc["territory"] = territory_for_departement(departement) if departement else None


def _sas_block(participation: SasParticipation | None, cpts_names: dict[str, str]) -> dict:
    if participation is None:
        return {"participates": False, "cpts_finess": None, "cpts_name": None, "accepts_beyond": False,
                "beyond_phone": None, "vendor": None}
    return {
        "participates": participation.participates,
        "cpts_finess": participation.cpts_finess,
        "cpts_name": cpts_names.get(participation.cpts_finess or "") or None,
        "accepts_beyond": participation.accepts_beyond,
        "beyond_phone": participation.beyond_phone,
        "vendor": participation.vendor,
    }


def _apply_participation(run: _Run, doc: dict, kind: str, identifier: str) -> None:
    # Only with a participation file: otherwise the platform's own registrations (sas block) stay as they are.
    if run.participation is None:
        return
    entry = run.participation.get(kind, identifier)
    doc["sas"] = _sas_block(entry, run.cpts_names)
    doc["convention_sector"] = entry.convention_sector if entry else None
    if entry is not None and entry.participates:
        run.summary.remarks[f"participating_{kind}"] += 1


def _practice_doc(run: _Run, r: PracticeRecord, geo) -> dict:
    first, last = r.first_name, r.last_name
    name = f"{first} {last}".strip()
    doc = {
        "id": practice_offer_id(r),
        "kind": "ps",
        "national_id": r.national_id,
        "national_id_type": r.id_type,
        "civility": r.civility or None,
        "last_name": last,
        "first_name": first or None,
        "last_name_folded": _fold(last),
        "first_name_folded": _fold(first) or None,
        "name": name,
        "name_folded": _fold(name),
        "profession_code": r.profession_code,
        "profession_label": r.profession_label,
        "specialties": [code for code, _ in r.specialties],
        "specialty_labels": [label for _, label in r.specialties],
        "exercise_mode": r.exercise_mode or None,
        "address": _address(r, geo),
        "phones": r.phones,
        "structure": {
            "technical_id": r.technical_id or None,
            "name": r.structure_name or r.enseigne or None,
            "name_folded": _fold(r.structure_name or r.enseigne) or None,
            "siret": r.siret or None,
            "siren": r.siren or None,
            "finess": r.finess or None,
            "finess_ej": r.finess_ej or None,
            "sector_code": r.sector_code or None,
            "sector_label": r.sector_label or None,
        },
        "sos": None,
        "member_count": None,
        "source": r.source,
        "source_updated_at": r.updated or run.source_dates.get(r.source),
    }
    _place(run, r, geo, doc)
    _apply_participation(run, doc, "ps", r.national_id)
    return doc


def _sos_doc(run: _Run, place: _SosPlace) -> dict:
    r = place.record
    name = r.structure_name
    doc = {
        "id": place.offer_id,
        "kind": "sos",
        "national_id": None,
        "national_id_type": None,
        "civility": None,
        "last_name": None,
        "first_name": None,
        "last_name_folded": None,
        "first_name_folded": None,
        "name": name,
        "name_folded": _fold(name),
        "profession_code": "10",
        "profession_label": "Médecin",
        "specialties": ["SM54"],
        "specialty_labels": [run.specialties.label("SM54") or "Médecine générale"],
        "exercise_mode": None,
        "address": _address(r, place.geo),
        "phones": r.phones,
        "structure": {
            "technical_id": r.technical_id or None,
            "name": name,
            "name_folded": _fold(name),
            "siret": r.siret or None,
            "siren": r.siren or None,
            "finess": r.finess or None,
            "finess_ej": r.finess_ej or None,
            "sector_code": r.sector_code or None,
            "sector_label": r.sector_label or None,
        },
        "sos": {"association_siret": r.siret or None, "association_name": name},
        "member_count": len(place.members),
        "source": r.source,
        "source_updated_at": run.source_dates.get(r.source),
    }
    _place(run, r, place.geo, doc)
    _apply_participation(run, doc, "sos", r.technical_id)
    if run.participation is not None:
        entry = run.participation.get("sos", r.technical_id)
        doc["sos"]["opening_hours"] = entry.opening_hours if entry else None
    return doc


def _structure_doc(run: _Run, r: StructureRecord, geo) -> dict:
    if r.kind == "cpts" and run.participation is not None:
        if run.cpts_members is None:
            run.cpts_members = run.participation.cpts_members()
        members = run.cpts_members.get(r.finess, 0)
    else:
        members = len(run.finess_members.get(r.finess, ()))
    doc = {
        "id": f"{r.kind}-{r.finess}",
        "kind": r.kind,
        "national_id": None,
        "national_id_type": None,
        "civility": None,
        "last_name": None,
        "first_name": None,
        "last_name_folded": None,
        "first_name_folded": None,
        "name": r.name,
        "name_folded": _fold(r.name),
        "profession_code": None,
        "profession_label": None,
        "specialties": [],
        "specialty_labels": [],
        "exercise_mode": None,
        "address": _address(r, geo),
        "phones": r.phones,
        "structure": {
            "technical_id": None,
            "name": r.long_name or r.name,
            "name_folded": _fold(r.long_name or r.name),
            "siret": r.siret or None,
            "siren": r.siret[:9] if len(r.siret) == 14 else None,
            "finess": r.finess,
            "finess_ej": r.finess_ej or None,
            "sector_code": r.category_code,
            "sector_label": r.category_label or None,
        },
        "sos": None,
        "member_count": members,
        "source": r.source,
        "source_updated_at": run.source_dates.get(r.source),
    }
    _place(run, r, geo, doc)
    _apply_participation(run, doc, r.kind, r.finess)
    return doc


# --------------------------------------------------------------------------------------------------
# Load
# --------------------------------------------------------------------------------------------------

def _threshold_message(summary: LoadSummary, threshold: float, *, early: bool = False) -> str:
    reasons = ", ".join(f"{k}={v}" for k, v in summary.rejected_by_reason.most_common(6))
    where = f"after {summary.lines_read} lines" if early else f"of {summary.lines_read} lines"
    return (f"directory load refused: {summary.rejected} rejected lines {where} "
            f"({summary.rejected_share:.1%}) exceed the threshold of {threshold:.1%} "
            f"(SAS_DIRECTORY_REJECT_THRESHOLD); by reason: {reasons}")


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def build_directory_geocoder(settings: Settings) -> Geocoder:
    """The geocoder the settings ask for (gazetteer from the reference-data directory, BAN if set)."""
    cache_path = settings.geocoder_cache_path or (settings.cache_dir / "geocode-ban.sqlite")
    return build_geocoder(
        communes=load_communes(settings.reference_data_dir),
        ban_url=settings.geocoder_ban_url,
        ban_timeout_s=settings.geocoder_ban_timeout_s,
        ban_cache_path=cache_path if settings.geocoder_ban_url else None,
        ban_min_score=settings.geocoder_ban_min_score,
    )


def _check_alias(es: Elasticsearch, alias: str) -> None:
    if not es.indices.exists_alias(name=alias):
        raise ConfigurationError(f"index alias {alias} does not exist: run `sas setup` first")


def _refresh_setting(es: Elasticsearch, alias: str) -> str | None:
    settings = es.indices.get_settings(index=alias, name="index.refresh_interval").body
    for body in settings.values():
        return body.get("settings", {}).get("index", {}).get("refresh_interval")
    return None


def _protected_by_rejection(doc_id: str, run: _Run) -> bool:
    # ``ps-<national id>-<place>`` / ``sos-<place>``: a rejected line of that professional, or at that
    # place, may be this very offer. Erring on the side of keeping: a stale offer lives one load longer.
    if doc_id.startswith("ps-"):
        parts = doc_id.split("-", 2)
        return len(parts) == 3 and (parts[1] in run.protected or parts[2] in run.protected_places)
    if doc_id.startswith("sos-"):
        return doc_id[4:] in run.protected_places
    return False


def _delete_disappeared(run: _Run, es: Elasticsearch, sources: list[str]) -> None:
    """Full load: delete the offers of ``sources`` that were in the index before and not in this run.

    Only offers absent from the whole file are candidates: an offer whose professional is named by a
    rejected line is kept (counted in ``kept_rejected``), since the line may be its own. What is left is
    capped (``directory_max_delete_share`` of the offers of these sources, at least
    ``directory_max_delete_floor``): beyond, nothing is deleted and the load fails, because a file that
    lost that many places is far more likely broken (rejected lines that could not be keyed, a cut
    extraction) than a true picture. The harvested slots of the deleted offers go with them.
    """
    seen, wanted = run.seen, set(sources)
    s, settings = run.summary, run.settings
    of_sources = 0
    stale: list[str] = []
    for doc_id, (_c, _p, source) in (run.known or {}).items():
        if source not in wanted:
            continue
        of_sources += 1
        if doc_id in seen:
            continue
        if _protected_by_rejection(doc_id, run):
            s.kept_rejected += 1
        else:
            stale.append(doc_id)
    cap = max(settings.directory_max_delete_floor, int(settings.directory_max_delete_share * of_sources))
    if len(stale) > cap:
        raise DataQualityError(
            f"directory load refused: it would delete {len(stale)} of the {of_sources} offers of "
            f"{', '.join(sorted(wanted))} ({len(stale) / max(of_sources, 1):.1%}), more than the cap of {cap} "
            f"(SAS_DIRECTORY_MAX_DELETE_SHARE={settings.directory_max_delete_share:.1%}, "
            f"SAS_DIRECTORY_MAX_DELETE_FLOOR={settings.directory_max_delete_floor}); nothing was deleted. "
            f"{s.rejected} rejected lines, {s.rejected_unkeyed} of them naming neither a professional nor a "
            f"place: "
            f"check the file; if the removals are real, raise the cap for this load"
        )
    _bulk(run, es, (("delete", doc_id, None) for doc_id in stale))
    _remove_slots_of(run, es, stale)
    gone = set(stale)
    known = run.known or {}
    _remove_slots_of(run, es, _orphan_slot_offers(
        run, es, exists=lambda offer_id: (offer_id in known or offer_id in seen) and offer_id not in gone))


def _orphan_slot_offers(run: _Run, es: Elasticsearch, *, exists) -> list[str]:
    """Offer ids that slots point at but that no longer exist (left by loads before the slot clean-up
    above, or by an offer deleted by hand): distinct ``offer_id`` values, paged with a composite
    aggregation, so the cost follows the number of offers, not of slots."""
    alias = alias_name(run.settings.index_prefix, "slots")
    if not es.indices.exists_alias(name=alias):
        return []
    orphans: list[str] = []
    after = None
    while True:
        composite = {"size": 10_000, "sources": [{"offer": {"terms": {"field": "offer_id"}}}]}
        if after:
            composite["after"] = after
        answer = es.search(index=alias, size=0, aggs={"offers": {"composite": composite}})
        agg = answer["aggregations"]["offers"]
        orphans += [b["key"]["offer"] for b in agg["buckets"] if not exists(b["key"]["offer"])]
        after = agg.get("after_key")
        if not after or not agg["buckets"]:
            return orphans


def _remove_slots_of(run: _Run, es: Elasticsearch, offer_ids: list[str]) -> None:
    """Delete the harvested slots of offers that are gone: a slot without its offer would be shown as a
    card with no name. They are not re-attached to another offer: which place a slot belongs to is the
    vendor's answer, and its next harvest writes the slots afresh against the offers that exist then."""
    if not offer_ids:
        return
    alias = alias_name(run.settings.index_prefix, "slots")
    if not es.indices.exists_alias(name=alias):
        return
    es.indices.refresh(index=alias)
    # A scan and bulk deletes rather than ``_delete_by_query``: the node may run without the reindex
    # module, and the slots of a few deleted offers are few.
    for start in range(0, len(offer_ids), 10_000):
        hits = helpers.scan(es, index=alias, size=5000, preserve_order=False,
                            query={"query": {"terms": {"offer_id": offer_ids[start:start + 10_000]}},
                                   "_source": False})
        actions = ({"_op_type": "delete", "_index": hit["_index"], "_id": hit["_id"]} for hit in hits)
        for ok, item in helpers.streaming_bulk(es, actions, chunk_size=2000, raise_on_error=False):
            run.summary.slots_removed += ok and item["delete"].get("result") == "deleted"
    es.indices.refresh(index=alias)


def _record_run(es: Elasticsearch, settings: Settings, summary: LoadSummary) -> None:
    doc = {
        "id": summary.run_id,
        "kind": "directory",
        "vendor": None,
        "mode": summary.mode,
        "started_at": summary.started_at.isoformat(),
        "ended_at": _iso(summary.ended_at),
        "duration_s": round(summary.duration_s, 3),
        "status": summary.status,
        "requests": 0,
        "read": summary.lines_read,
        "upserted": summary.indexed,
        "deleted": summary.deleted,
        "unchanged": summary.unchanged,
        "rejected": summary.rejected,
        "rejected_by_reason": [{"reason": k, "count": v} for k, v in sorted(summary.rejected_by_reason.items())],
        "errors": [summary.error] if summary.error else [],
        "stale_marked": 0,
    }
    spec("harvest_runs").model.model_validate(doc)
    try:
        es.index(index=alias_name(settings.index_prefix, "harvest_runs"), id=summary.run_id, document=doc,
                 refresh=True)  # dashboards and the next incremental refresh see it at once
    except Exception as exc:  # noqa: BLE001 - the load itself is done; losing its record must not hide it
        log.warning("could not record directory run %s: %s", summary.run_id, exc)


def run_pipeline(
    *,
    settings: Settings,
    es: Elasticsearch,
    items: Iterable,
    sources: dict[str, str],
    source_dates: dict[str, datetime | None],
    delete_sources: list[str],
    full: bool,
    participation: ParticipationTable | None = None,
    geocoder: Geocoder | None = None,
    specialties: Specialties | None = None,
    threshold: float | None = None,
    cpts_names: dict[str, str] | None = None,
    progress_stop=None,
) -> LoadSummary:
    """Run the stages over ``items`` (connector output) and write the offers. Used by every source."""
    alias = alias_name(settings.index_prefix, "offers")
    _check_alias(es, alias)
    tag = "fhir" if "annuaire_fhir" in sources else "files"
    summary = LoadSummary(run_id=f"directory-{tag}-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}",
                          mode="full" if full else "incremental", sources=sources)
    run = _Run(
        settings=settings,
        summary=summary,
        alias=alias,
        geocoder=geocoder or build_directory_geocoder(settings),
        specialties=specialties or load_specialties(settings.reference_data_dir),
        participation=participation,
        source_dates={k: _iso(v) for k, v in source_dates.items()},
        threshold=settings.directory_reject_threshold if threshold is None else threshold,
        min_lines=settings.directory_reject_min_lines,
        cpts_names=cpts_names or {},
        locator=AddressLocator.for_settings(es, settings),
    )
    if participation is not None:
        summary.lines_read += participation.lines
        for reason, count in participation.rejected_by_reason().items():
            summary.rejected_by_reason[f"participation:{reason}"] += count

    previous_refresh = None
    if full:
        run.known = _known_documents(es, alias)
        previous_refresh = _refresh_setting(es, alias)
        es.indices.put_settings(index=alias, settings={"index": {"refresh_interval": "-1"}})
    started = time.perf_counter()
    try:
        stages = _triage(run, items)
        stages = _geocode(run, stages)
        stages = _documents(run, stages)
        stages = _dedupe(run, stages)
        stages = _validate_sample(run, stages)
        _bulk(run, es, _actions(run, stages))
        if progress_stop is not None:
            progress_stop()
        if summary.rejected_share > run.threshold:
            raise DataQualityError(_threshold_message(summary, run.threshold))
        if full and delete_sources:
            _delete_disappeared(run, es, delete_sources)
        summary.status = "success" if not summary.failed else "partial"
    except Exception as exc:
        summary.status = "failed"
        summary.error = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        raise
    finally:
        if progress_stop is not None:
            progress_stop()
        if full:
            es.indices.put_settings(index=alias, settings={"index": {"refresh_interval": previous_refresh}})
        es.indices.refresh(index=alias)
        summary.ended_at = datetime.now(timezone.utc)
        summary.geocoder = dict(run.geocoder.stats)
        summary.geocoder["validated_documents"] = run.validated
        summary.geocoder["pipeline_s"] = round(time.perf_counter() - started, 3)
        _record_run(es, settings, summary)
    return summary


class _Progress:
    """A rich progress bar over the bytes of the RPPS file (nothing when disabled)."""

    def __init__(self, enabled: bool, total: int, label: str) -> None:
        self._progress = None
        self._task = None
        if enabled:
            from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn,
                                       TimeRemainingColumn)

            self._progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(),
                                      TimeElapsedColumn(), TimeRemainingColumn(), transient=False)
            self._task = self._progress.add_task(label, total=total)
            self._progress.start()

    def advance(self, n: int) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, n)

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def load_directory(
    *,
    settings: Settings,
    es: Elasticsearch,
    rpps_path: Path | str,
    finess_path: Path | str | None = None,
    participation_path: Path | str | None = None,
    full: bool = True,
    progress: bool = True,
    geocoder: Geocoder | None = None,
    threshold: float | None = None,
) -> LoadSummary:
    """Parse → geocode → bulk index the RPPS extraction (+ FINESS, + SAS participation).

    ``full=True`` also removes offers of the loaded sources that are no longer in the files (not those a
    rejected line names; capped, see ``_delete_disappeared``). Raises ``DataQualityError`` when the
    rejected share exceeds the threshold or the deletions the cap (nothing is deleted then), when the
    FINESS file is in no known encoding or the RPPS zip is damaged, and
    ``ConfigurationError`` when the index or the reference data are missing. Returns the summary.
    """
    rpps_path = Path(rpps_path)
    specialties = load_specialties(settings.reference_data_dir)
    participation = read_participation(participation_path) if participation_path else None
    with open_extraction(rpps_path) as (_stream, size, member):
        pass  # validates the path / zip early and tells the progress bar the size
    sources = {"rpps": str(rpps_path)}
    dates: dict[str, datetime | None] = {"rpps": extraction_date(member) or extraction_date(rpps_path)}
    delete_sources = ["rpps"]
    structure_items: list = []
    cpts_names: dict[str, str] = {}
    if finess_path is not None:
        finess_path = Path(finess_path)
        sources["finess"] = str(finess_path)
        dates["finess"] = stock_date(finess_path)
        delete_sources.append("finess")
        # The kept establishments are few (CPTS, MSP, centres): read them first so that practitioners'
        # participation can name their CPTS; they are emitted after the RPPS lines.
        structure_items = list(read_finess(finess_path))
        cpts_names = {i.finess: i.name for i in structure_items if type(i) is StructureRecord and i.kind == "cpts"}
    bar = _Progress(progress, size, f"loading {rpps_path.name}")

    def items() -> Iterator:
        yield from read_rpps(rpps_path, specialties=specialties, on_bytes=bar.advance)
        yield from structure_items

    return run_pipeline(
        settings=settings, es=es, items=items(), sources=sources, source_dates=dates,
        delete_sources=delete_sources, full=full, participation=participation, geocoder=geocoder,
        specialties=specialties, threshold=threshold, cpts_names=cpts_names, progress_stop=bar.stop,
    )


def load_directory_fhir(
    *,
    settings: Settings,
    es: Elasticsearch,
    base_url: str | None = None,
    api_key: str | None = None,
    since: datetime | None = None,
    full: bool = False,
    participation_path: Path | str | None = None,
    geocoder: Geocoder | None = None,
    threshold: float | None = None,
) -> LoadSummary:
    """Load practice places from the Annuaire Santé FHIR API (incremental with ``since``)."""
    from connectors.directory.annuaire_fhir import AnnuaireFhirClient

    url = base_url or settings.annuaire_fhir_url
    if not url:
        raise ConfigurationError("no Annuaire Santé FHIR URL: set SAS_ANNUAIRE_FHIR_URL or pass --url")
    key = api_key or (settings.annuaire_fhir_api_key.get_secret_value() if settings.annuaire_fhir_api_key else None)
    specialties = load_specialties(settings.reference_data_dir)
    participation = read_participation(participation_path) if participation_path else None
    if full and since is not None:
        raise ConfigurationError("a full load reads everything: --since only goes with an incremental load")
    with AnnuaireFhirClient(url, api_key=key, page_size=settings.annuaire_fhir_page_size,
                            timeout_s=settings.es_request_timeout_s) as client:
        started = datetime.now(timezone.utc)
        return run_pipeline(
            settings=settings, es=es, items=client.practice_records(specialties=specialties, since=since),
            sources={"annuaire_fhir": url}, source_dates={"annuaire_fhir": started},
            delete_sources=["annuaire_fhir"], full=full, participation=participation, geocoder=geocoder,
            specialties=specialties, threshold=threshold,
        )


def _last_success(es: Elasticsearch, settings: Settings, tag: str) -> datetime | None:
    """Start of the last successful directory run of ``tag`` (``fhir`` / ``files``), if any."""
    body = {"size": 1, "sort": [{"started_at": "desc"}],
            "query": {"bool": {"filter": [{"term": {"kind": "directory"}}, {"term": {"status": "success"}},
                                          {"prefix": {"id": f"directory-{tag}-"}}]}}}
    try:
        hits = es.search(index=alias_name(settings.index_prefix, "harvest_runs"), body=body)["hits"]["hits"]
    except Exception:  # noqa: BLE001 - no history: a first refresh reads everything
        return None
    return datetime.fromisoformat(hits[0]["_source"]["started_at"]) if hits else None


def refresh_directory(*, es: Elasticsearch, settings: Settings) -> LoadSummary | None:
    """Scheduled refresh: an incremental Annuaire Santé FHIR load since the last successful run.

    Does nothing (and says so) when no FHIR URL is configured: file loads are operator actions
    (``sas directory load``), since the national extraction has to be fetched first.
    """
    if not settings.annuaire_fhir_url:
        log.info("directory refresh skipped: SAS_ANNUAIRE_FHIR_URL is not set")
        return None
    since = _last_success(es, settings, "fhir")
    return load_directory_fhir(settings=settings, es=es, since=since, full=False)
