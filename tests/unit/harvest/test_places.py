"""Matching vendor places to directory offers (national id + postcode / city + street)."""

from __future__ import annotations

from datetime import datetime, timezone

import orjson

from connectors.vendors.config import VendorConfig
from connectors.vendors.mapping import Place, SlotRecord
from indexer.harvest import (
    OfferBook,
    Window,
    _slot_static,
    content_hash,
    slot_document,
    slot_document_bytes,
    static_part_bytes,
)


def offer(offer_id: str, line: str, postcode: str | None, city: str, national_id: str = "810100050075") -> dict:
    return {"id": offer_id, "kind": "ps", "national_id": national_id,
            "address": {"line": line, "postcode": postcode, "city": city, "city_folded": city.lower()},
            "location": {"lat": 44.2, "lon": 0.6}, "departement": "47", "territory": "SAS-47",
            "name_folded": "sebastien thomas", "specialties": ["SM54"]}


def record(line: str, postcode: str | None, city: str, national_id: str = "810100050075") -> SlotRecord:
    return SlotRecord(vendor="acme", resource_id="s1", search="ps", roster_key=national_id,
                      start=datetime(2026, 3, 2, 9, tzinfo=timezone.utc),
                      end=datetime(2026, 3, 2, 9, 20, tzinfo=timezone.utc),
                      practitioner_national_id=national_id, place=Place(line=line, postcode=postcode, city=city))


def test_same_postcode_then_house_number_then_street_words():
    book = OfferBook([offer("one", "1 rue Madame Delmas", "47000", "Agen"),
                      offer("thirty", "30 rue Madame Delmas", "47000", "Agen"),
                      offer("elsewhere", "1 rue Madame Delmas", "31000", "Toulouse")])
    assert book.match(record("30 rue Mme DELMAS", "47000", "AGEN"))["id"] == "thirty"
    assert book.match(record("1 rue Mme DELMAS", "47000", "AGEN"))["id"] == "one"
    assert book.match(record("1 rue Mme DELMAS", "31000", "TOULOUSE"))["id"] == "elsewhere"


def test_unknown_town_or_practitioner_is_no_match():
    book = OfferBook([offer("one", "1 rue Madame Delmas", "47000", "Agen")])
    assert book.match(record("1 rue Mme DELMAS", "33000", "Bordeaux")) is None
    assert book.match(record("1 rue Mme DELMAS", "47000", "Agen", national_id="810002673899")) is None
    # Without postcode the folded city decides.
    assert book.match(record("1 rue Mme DELMAS", None, "AGEN"))["id"] == "one"


def test_offers_given_as_a_reader_are_read_once_when_a_slot_is_first_matched():
    reads: list[int] = []

    def read() -> list[dict]:
        reads.append(1)
        return [offer("one", "1 rue Madame Delmas", "47000", "Agen")]

    book = OfferBook(read)
    assert not book.loaded and reads == []          # a steady poll matches nothing: nothing read
    assert book.match(record("1 rue Mme DELMAS", "47000", "AGEN"))["id"] == "one"
    book.add(offer("two", "2 rue Madame Delmas", "47000", "Agen"))
    assert book.match(record("2 rue Mme DELMAS", "47000", "AGEN"))["id"] == "two"
    assert book.loaded and reads == [1]


def test_slot_document_is_canonical_and_denormalised():
    rec = record("1 rue Mme DELMAS", "47000", "AGEN")
    rec.types, rec.modes = ["PUBLIC"], ["AMB"]
    target = offer("one", "1 rue Madame Delmas", "47000", "Agen")
    doc = slot_document(rec, target)
    assert doc["id"] == "acme:s1" and doc["offer_id"] == "one" and doc["location"] == {"lat": 44.2, "lon": 0.6}
    assert doc["date_range"] == {"gte": "2026-03-02T09:00:00+00:00", "lt": "2026-03-02T09:20:00+00:00"}
    assert doc["specialties"] == ["SM54"]                 # the offer's, when the vendor gives none
    assert doc["duration_min"] == 20 and doc["territory"] == "SAS-47"
    assert content_hash(doc) == content_hash(slot_document(rec, target))
    rec.modes = ["VR"]
    assert content_hash(doc) != content_hash(slot_document(rec, target))


def test_spliced_document_bytes_equal_the_serialised_document():
    """The harvest writes ``slot_document_bytes`` and hashes them: they must be exactly the serialised
    document, or hashes stored before would all look changed (and a byte slip would be a broken doc)."""
    rec = record("1 rue Mme DELMAS", "47000", "AGEN")
    rec.types, rec.modes, rec.motive = ["PUBLIC", "SNP"], ["AMB", "VR"], "Consultation « urgente »"
    rec.cpts = [{"finess": "1470000011", "name": "CPTS du Grand Agen", "phone": None}]
    target = offer("one", "1 rue Madame Delmas", "47000", "Agen")
    static_bytes = static_part_bytes(_slot_static(rec, target))
    raw = slot_document_bytes(rec, target, static_bytes=static_bytes)
    assert raw == orjson.dumps(slot_document(rec, target))
    assert orjson.loads(raw)["cpts"][0]["name"] == "CPTS du Grand Agen"
    rec.specialties = []
    assert slot_document_bytes(rec, target, static_bytes=static_bytes) == orjson.dumps(slot_document(rec, target))


def test_windows():
    vendor = VendorConfig(name="acme", base_url="http://x")
    now = datetime(2026, 3, 2, 9, 30, 12, 345000, tzinfo=timezone.utc)
    incremental = Window.for_mode(vendor, "incremental", now=now)
    assert incremental.start == datetime(2026, 3, 2, 9, 30, 12, tzinfo=timezone.utc)
    assert (incremental.end - incremental.start).total_seconds() == 48 * 3600
    assert (Window.for_mode(vendor, "full", now=now).end - incremental.start).days == 7
