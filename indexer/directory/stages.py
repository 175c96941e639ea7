"""The load's stages, generators chained by ``run_pipeline``: triage → geocode → documents → dedupe
→ sample validation → bulk actions (each counts what it skips, with a reason, in the summary)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import orjson

from connectors.addresses import address_key, street_key
from connectors.directory.records import PracticeRecord, Rejection, Remark, StructureRecord
from connectors.geocoding import GeoFailure, GeoResult
from indexer.addresses import AddressLocator
from indexer.directory.offer_documents import practice_doc, sos_doc, structure_doc
from indexer.directory.offer_ids import is_sos_place, normalized_departement, sos_offer_id
from indexer.directory.run_context import DirectoryRun, SosPlace
from indexer.directory.summary import threshold_message
from indexer.fingerprint import fingerprint
from mappings.offers import OfferDoc
from sas_core.errors import DataQualityError

#: Remarks that stand for a whole line read (the others annotate a line already counted).
_LINE_REMARKS = {"merged_line", "blank_line", "other_category", "position"}
#: Validate the first documents and then one in this many (full validation costs too much per doc).
_VALIDATE_FIRST, _VALIDATE_EVERY = 200, 5000


def triage(run: DirectoryRun, items: Iterable) -> Iterator[PracticeRecord | StructureRecord]:
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
            _count_rejection(run, item)
        elif cls is Remark:
            if item.reason in _LINE_REMARKS:
                s.lines_read += 1
            s.remarks[item.reason] += 1
        if s.lines_read >= next_check:
            next_check += check_every
            if s.rejected_share > run.threshold:
                raise DataQualityError(threshold_message(s, run.threshold, early=True))


def _count_rejection(run: DirectoryRun, rejection: Rejection) -> None:
    """A rejected line, by reason; what it names (professional, place) is protected from deletion."""
    s = run.summary
    s.lines_read += 1
    s.rejected_by_reason[rejection.reason] += 1
    if rejection.key:
        run.protected.add(rejection.key)
    if rejection.place:
        run.protected_places.add(rejection.place)
    if not (rejection.key or rejection.place):
        s.rejected_unkeyed += 1


def geocode(run: DirectoryRun, records: Iterable) -> Iterator[tuple]:
    """Attach a position (or the reason there is none) to each record: the commune first (gazetteer, or
    BAN's API when configured), then, in batches, the address in the ``addresses`` index."""
    geocoder = run.geocoder
    batch: list[tuple] = []
    size = max(1, run.settings.addresses_lookup_batch)
    locator = run.locator
    for record in records:
        geo: GeoResult | GeoFailure
        if type(record) is StructureRecord and record.lat is not None and record.lon is not None:
            geo = GeoResult(record.lat, record.lon, "address", "finess", record.address.insee or None,
                            record.address.postcode or None, record.address.city or None,
                            record.departement or None)
        else:
            geo = geocoder.geocode(record.address, departement=normalized_departement(record.departement))
        if locator is None:
            yield record, geo
            continue
        batch.append((record, geo))
        if len(batch) >= size:
            yield from _at_addresses(run, locator, batch)
            batch = []
    if batch and locator is not None:
        yield from _at_addresses(run, locator, batch)


def _match_keys(record, geo) -> tuple[str, str]:
    """(address key, street key) of a record placed at its commune's centroid; empty when it has none."""
    if type(geo) is not GeoResult or geo.source != "gazetteer" or geo.precision != "municipality" or not geo.insee:
        return "", ""
    a = record.address
    if not a.street:
        return "", ""
    street = f"{a.street_type} {a.street}" if a.street_type else a.street
    return address_key(geo.insee, street, a.number, a.repetition), street_key(geo.insee, street)


def _at_addresses(run: DirectoryRun, locator: AddressLocator, batch: list[tuple]) -> Iterator[tuple]:
    """Refine a batch's commune-level points to the address (number + street matched, ``address``) or
    the street (``street``); what the base does not have stays at the commune centroid."""
    keys = [_match_keys(record, geo) for record, geo in batch]
    numbers, streets = locator.lookup(address_keys={k[0] for k in keys if k[0]},
                                      street_keys={k[1] for k in keys if k[1]})
    stats = run.geocoder.stats
    for (record, geo), (a_key, s_key) in zip(batch, keys, strict=True):
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


def documents(run: DirectoryRun, pairs: Iterable[tuple]) -> Iterator[dict]:
    """Offer documents: one per practice record, then the SOS places and the FINESS structures."""
    structures: list[tuple[StructureRecord, GeoResult | GeoFailure]] = []
    for record, geo in pairs:
        if type(record) is StructureRecord:
            structures.append((record, geo))  # emitted last: their member counts need the RPPS lines
            continue
        doc = practice_doc(run, record, geo)
        if record.finess:
            run.finess_members.setdefault(record.finess, set()).add(record.national_id)
        if is_sos_place(record):
            offer_id = sos_offer_id(record)
            place = run.sos_places.get(offer_id)
            if place is None:
                place = run.sos_places[offer_id] = SosPlace(offer_id, record, geo)
            place.members.add(record.national_id)
        yield doc
    for place in run.sos_places.values():
        yield sos_doc(run, place)
    for record, geo in structures:
        yield structure_doc(run, record, geo)


def dedupe(run: DirectoryRun, docs: Iterable[dict]) -> Iterator[dict]:
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


def validate_sample(run: DirectoryRun, docs: Iterable[dict]) -> Iterator[dict]:
    """Check a sample of documents against the pydantic model (the strict mapping checks the rest)."""
    count = 0
    for doc in docs:
        count += 1
        if count <= _VALIDATE_FIRST or count % _VALIDATE_EVERY == 0:
            OfferDoc.model_validate(doc)  # a failure here is a bug in the builders: let it surface
            run.validated += 1
        yield doc


def bulk_actions(run: DirectoryRun, docs: Iterable[dict]) -> Iterator[tuple[str, str, bytes | None]]:
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
            content = fingerprint(doc)
            participation = fingerprint((sas, sector, hours))
            doc["sas"], doc["convention_sector"] = sas, sector
            if sos is not None:
                sos["opening_hours"] = hours
        else:
            content, participation = fingerprint(doc), None
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

