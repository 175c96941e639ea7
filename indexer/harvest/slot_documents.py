"""Slot documents, and their bytes: the part shared by a place's slots (practitioner, place, offer) is
serialised once and spliced into each slot's serialisation, which is hashed and sent as the bulk body
as is (the harvester's hot path)."""

from __future__ import annotations

import orjson

from connectors.vendors.mapping import SlotRecord
from indexer.fingerprint import fingerprint
from sas_core.text import fold


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
    # The instant in UTC as ``datetime.isoformat`` writes it (``…+00:00``, seconds or microseconds as the vendor
    # gave), not ``sas_core.clock.iso``: changing the form would change every slot's content hash (a rewrite of
    # every slot on the next run). The mapper's text when it has it (formatting is ~2 µs an instant).
    start = record.start_text or record.start.isoformat()
    end = record.end_text or record.end.isoformat()
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


#: Hash of a slot document's content (its dict or its bytes: the same). ``slot_document`` always builds its
#: keys in the same order, so its serialisation is canonical without sorting (and is reused for the bulk
#: body). The shared fingerprint itself, not a wrapper: it runs once per harvested slot.
content_hash = fingerprint
