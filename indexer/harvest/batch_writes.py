"""Writing one batch's answer: the whole truth of the batch — what came back is created, updated or
skipped (content hash), claims the vendor lists free again are released, and what did not come back is
queued for deletion unless the mass-deletion guard holds it (then kept and marked stale).

``content_hash`` is ``<source hash>.<document hash>``. Incremental runs skip a slot whose source (the
vendor's Slot, its Schedule graph and CPTS) is unchanged without mapping it again; full sweeps map
everything and compare the documents, which also picks up directory changes (an offer that moved, a new
geocode) for slots the vendor did not touch.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import orjson

from connectors.vendors.mapping import BundleMapper, SlotRecord
from indexer.bulk import BulkWriter
from indexer.harvest.existing_slots import ExistingSlots
from indexer.harvest.offer_book import OfferBook
from indexer.harvest.run_stats import RunStats
from indexer.harvest.slot_documents import (
    _slot_static,
    content_hash,
    slot_document,
    slot_document_bytes,
    static_part_bytes,
)
from indexer.harvest.vendor_places import PlaceMaker
from indexer.harvest.window import Mode
from sas_core.settings import HarvestSettings


@dataclass(frozen=True)
class BatchAnswer:
    """One search's answer: its pages (FHIR searchset bundles) for the ids of ``batch``."""

    vendor: str
    search: str
    batch: list[str]
    pages: list[dict]
    #: Per page, as the client read them (``SearchAnswer``): entry digest, body when not decoded, not decoded.
    digests: list[bytes | None] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    unread: list[bool] = field(default_factory=list)


@dataclass(frozen=True)
class SteadyBatch:
    """What an incremental answer of one batch was when it changed nothing: its pages' entry digests, and
    what was then indexed for the batch (slots, and a hash of their ids and content hashes). The same
    pages again over the same indexed slots change nothing again: nothing to decode, map or write."""

    digests: tuple[bytes | None, ...]
    indexed: int
    indexed_hash: int
    slots_seen: int
    rejected: Counter
    flags: Counter


#: (search, batch ids) → the batch's last answer that changed nothing (incremental runs of one vendor).
SteadyBook = dict[tuple[str, tuple[str, ...]], SteadyBatch]


def write_batch(answer: BatchAnswer, *, mapper: BundleMapper, book: OfferBook, places: PlaceMaker,
                existing: ExistingSlots, writer: BulkWriter, stats: RunStats, harvested_at: str, mode: Mode,
                settings: HarvestSettings, steady: SteadyBook | None = None) -> None:
    """Write the whole truth of one batch (see the module doc). Raises ``BundleError`` for a page that
    cannot be mapped, before anything of the batch is written. ``steady``: the vendor's steady batches
    (incremental runs), read and kept up to date."""
    prefix = f"{answer.vendor}:"
    key = (answer.search, tuple(answer.batch))
    if steady is not None and mode == "incremental" and _still_steady(answer, steady.get(key), existing,
                                                                      writer, stats):
        return
    pages = _decoded_pages(answer)
    known_sources = _known_sources(answer.batch, existing, prefix) if mode == "incremental" else None
    # Map every page first: a broken page makes the whole batch a failure, never a partial truth.
    records, seen, slots_seen, rejected, flags = _map_pages(answer, pages, mapper, known_sources, prefix, stats)
    _confirm_unchanged(seen - records.keys(), existing, writer, stats)
    _write_records(records, book=book, places=places, existing=existing, writer=writer, stats=stats,
                   harvested_at=harvested_at)
    if existing.expired_claims:
        _release_claims(existing.expired_claims & (records.keys() | seen), writer, stats)
    indexed, gone = _gone(answer.batch, existing, records, seen)
    if steady is not None and mode == "incremental":
        if not records and not gone and answer.digests and None not in answer.digests:
            count, indexed_hash, _ = _indexed_state(answer.batch, existing)
            steady[key] = SteadyBatch(tuple(answer.digests), count, indexed_hash, slots_seen, rejected, flags)
        else:
            steady.pop(key, None)
    if not gone:
        return
    total = answer.pages[0].get("total") if answer.pages else None
    if isinstance(total, int) and total > slots_seen:
        # The answer contradicts itself (more matches announced than Slots sent): not a truth to delete by.
        hold_deletions(gone, "total_mismatch", existing, writer, stats, harvested_at)
    elif len(gone) >= settings.harvest_mass_delete_min and len(gone) > settings.harvest_mass_delete_share * indexed:
        hold_deletions(gone, "batch_mass_deletion", existing, writer, stats, harvested_at)
    else:
        existing.to_delete.extend(gone)


def hold_deletions(slot_ids: list[str], reason: str, existing: ExistingSlots, writer: BulkWriter, stats: RunStats,
                   now_iso: str) -> None:
    """Mass-deletion guard: keep ``slot_ids`` and mark them stale (once) instead of deleting them."""
    stats.deletions_held += len(slot_ids)
    stats.alerts[reason] += len(slot_ids)
    for slot_id in slot_ids:
        if not existing.by_id[slot_id][2]:
            writer.update(slot_id, {"stale_since": now_iso})
            existing.staled(slot_id)
            stats.stale_marked += 1


def _known_sources(batch: list[str], existing: ExistingSlots, prefix: str) -> dict[str, str]:
    """Vendor resource id → source hash of the batch's indexed slots (what lets the mapper skip them)."""
    known: dict[str, str] = {}
    for key in batch:
        for slot_id in existing.by_key.get(key, ()):
            stored = existing.by_id[slot_id][1]
            if stored:
                known[slot_id[len(prefix):]] = stored.split(".", 1)[0]
    return known


def _indexed_state(batch: list[str], existing: ExistingSlots) -> tuple[int, int, bool]:
    """(slots indexed for the batch's ids, a hash of their ids and content hashes, any of them stale)."""
    count = combined = 0
    stale = False
    by_id = existing.by_id
    for key in batch:
        for slot_id in existing.by_key.get(key, ()):
            _, stored, is_stale, _ = by_id[slot_id]
            count += 1
            # A sum: the same whatever the order of the scan (the process's own string hash, seeded at
            # random: nobody outside can aim at a collision).
            combined = (combined + hash((slot_id, stored))) & 0xFFFFFFFFFFFFFFFF
            stale = stale or is_stale
    return count, combined, stale


def _still_steady(answer: BatchAnswer, last: SteadyBatch | None, existing: ExistingSlots, writer: BulkWriter,
                  stats: RunStats) -> bool:
    """Whether the answer is the batch's last steady one, with the same slots indexed and none stale:
    then it is counted as that answer was (read, unchanged, rejections and flags by reason) without
    decoding it, expired claims of its slots are released, and nothing else is written."""
    if last is None or not answer.unread or not all(answer.unread) or tuple(answer.digests) != last.digests:
        return False
    count, indexed_hash, stale = _indexed_state(answer.batch, existing)
    if stale or count != last.indexed or indexed_hash != last.indexed_hash:
        return False
    stats.read += last.slots_seen
    stats.unchanged += count
    stats.rejected.update(last.rejected)
    stats.flags.update(last.flags)
    if existing.expired_claims:
        ids = {slot_id for key in answer.batch for slot_id in existing.by_key.get(key, ())}
        _release_claims(existing.expired_claims & ids, writer, stats)
    return True


def _decoded_pages(answer: BatchAnswer) -> list[dict]:
    """The answer's pages, those the client did not decode (known entries) decoded now."""
    if not any(answer.unread):
        return answer.pages
    # They were decoded without fault when first read (same bytes from ``entry`` on; their head is
    # decoded already): no malformed answer here.
    return [orjson.loads(answer.bodies[n]) if unread else page
            for n, (page, unread) in enumerate(zip(answer.pages, answer.unread, strict=True))]


def _map_pages(answer: BatchAnswer, pages: list[dict], mapper: BundleMapper, known_sources: dict[str, str] | None,
               prefix: str, stats: RunStats) -> tuple[dict[str, SlotRecord], set[str], int, Counter, Counter]:
    """(records mapped, ids of slots whose source is unchanged, Slots the answer sent, rejections and
    flags by reason)."""
    records: dict[str, SlotRecord] = {}
    seen: set[str] = set()
    slots_seen = 0
    rejected: Counter = Counter()
    flags: Counter = Counter()
    for page in pages:
        result = mapper.map_bundle(page, search=answer.search, requested=answer.batch, known_sources=known_sources)
        stats.read += result.slots_seen
        slots_seen += result.slots_seen
        stats.rejected.update(result.rejected)
        stats.flags.update(result.flags)
        rejected.update(result.rejected)
        flags.update(result.flags)
        for record in result.records:
            records[record.id] = record
        seen.update(prefix + resource_id for resource_id in result.unchanged)
    return records, seen, slots_seen, rejected, flags


def _confirm_unchanged(slot_ids: set[str], existing: ExistingSlots, writer: BulkWriter, stats: RunStats) -> None:
    """Slots the vendor sent unchanged: nothing to write, unless they were stale (fresh again)."""
    for slot_id in slot_ids:
        if existing.by_id[slot_id][2]:
            writer.update(slot_id, {"stale_since": None})
            existing.freshened(slot_id)
            stats.updated += 1
        else:
            stats.unchanged += 1


def _place_part(record: SlotRecord, book: OfferBook, places: PlaceMaker,
                stats: RunStats) -> tuple[dict, dict, bytes]:
    """(offer, static part, its bytes) of a record's place; a vendor-only place when the book has none."""
    offer = book.match(record)
    if offer is None:
        offer = places.make(record)
        book.add(offer)
        if offer.get("location") is None:
            stats.flags["place_not_geocoded"] += 1
    static = _slot_static(record, offer)
    return offer, static, static_part_bytes(static)


def _write_records(records: dict[str, SlotRecord], *, book: OfferBook, places: PlaceMaker, existing: ExistingSlots,
                   writer: BulkWriter, stats: RunStats, harvested_at: str) -> None:
    """Create the new slots, update the changed ones, skip the rest (the harvester's hot loop)."""
    statics: dict[tuple, tuple[dict, dict, bytes]] = {}
    run_fields = (b'","harvested_at":"' + harvested_at.encode()
                  + b'","stale_since":null,"hidden":false,"booked_count":0}')
    for slot_id, record in records.items():
        # Slots of one schedule share their Place object: match and build the place part once.
        cache_key = (id(record.place), record.roster_key, record.practitioner_national_id)
        cached = statics.get(cache_key)
        if cached is None:
            cached = statics[cache_key] = _place_part(record, book, places, stats)
        offer, static, static_bytes = cached
        raw = slot_document_bytes(record, offer, static_bytes=static_bytes)
        digest = f"{record.source_hash}.{content_hash(raw)}"
        known = existing.by_id.get(slot_id)
        if known is None:
            # The serialised content plus the run's fields, without serialising the document twice.
            writer.create_raw(slot_id, raw[:-1] + b',"content_hash":"' + digest.encode() + run_fields)
            existing.wrote(slot_id, record.roster_key, digest, record.start)
        elif known[1] is None or known[1].split(".", 1)[-1] != digest.split(".", 1)[1]:
            # Partial update: ``hidden`` / ``booked_count`` belong to the platform, never overwritten.
            document = slot_document(record, offer, static=static)
            document.update(content_hash=digest, harvested_at=harvested_at, stale_since=None)
            writer.update(slot_id, document)
            existing.wrote(slot_id, record.roster_key, digest, record.start)
            stats.updated += 1
        elif known[1] != digest or known[2]:
            # Same document, new source hash (e.g. a vendor-side field we do not keep), or stale.
            writer.update(slot_id, {"content_hash": digest, "stale_since": None})
            existing.rehashed(slot_id, digest)
            stats.updated += 1 if known[2] else 0
            stats.unchanged += 0 if known[2] else 1
        else:
            stats.unchanged += 1


def _release_claims(slot_ids: set[str], writer: BulkWriter, stats: RunStats) -> None:
    """The vendor still lists these claimed slots free and nobody reported booking them (INT_R03) within
    the lease: the booking was abandoned, the slot goes back to search."""
    for slot_id in slot_ids:
        writer.update(slot_id, {"hidden": False, "claim_expires_at": None, "claimed_by": None})
        stats.flags["claim_released"] += 1


def _gone(batch: list[str], existing: ExistingSlots, records: dict[str, SlotRecord],
          seen: set[str]) -> tuple[int, list[str]]:
    """(slots the batch had indexed, those of them the answer no longer has)."""
    indexed = 0
    gone: list[str] = []
    for key in batch:
        for slot_id in existing.by_key.get(key, ()):
            indexed += 1
            if slot_id not in records and slot_id not in seen:
                gone.append(slot_id)
    return indexed, gone
