"""Bundle → slot records: the specification's examples map completely; vendor quirks are tolerated;
bad resources are skipped one by one with a reason."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from connectors.directory.nomenclatures import load_specialties
from connectors.vendors.mapping import BundleError, BundleMapper, parse_instant, rpps_check_ok, specialty_lookup

FHIR = Path(__file__).resolve().parents[2] / "data" / "fhir"


def load(name: str) -> dict:
    return json.loads((FHIR / name).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def mapper() -> BundleMapper:
    return BundleMapper(vendor="acme", specialty_codes=specialty_lookup(load_specialties().labels))


def by_id(result):
    return {r.resource_id: r for r in result.records}


def test_ps_individual_example_maps_every_field(mapper):
    result = mapper.map_bundle(load("ps_individual.json"), search="ps")
    assert not result.rejected
    slots = by_id(result)
    assert set(slots) == {"ExampleSlotPSIndiv1", "ExampleSlotPSIndiv2", "ExampleSlotPSIndiv3", "ExampleSlotPSIndiv4"}
    one = slots["ExampleSlotPSIndiv1"]
    assert one.id == "acme:ExampleSlotPSIndiv1"
    assert one.practitioner_national_id == "810100050075" and one.roster_key == "810100050075"
    assert (one.practitioner_family, one.practitioner_given) == ("THOMAS", "Sébastien")
    assert one.start == datetime(2021, 11, 5, 9, 0, tzinfo=timezone.utc)
    assert one.end == datetime(2021, 11, 5, 9, 30, tzinfo=timezone.utc)
    assert one.types == ["PUBLIC"] and one.modes == ["AMB", "VR"]
    assert one.motive == "Visite de contrôle"
    assert one.specialties == ["SM54", "SM05"]
    assert one.bookable is True and one.booking_url == "https://exemple.com/rdv/com/"
    # contained Location (#ExampleLocation3) of PractitionerRole 2, structure id from organization.identifier
    assert (one.place.line, one.place.postcode, one.place.city) == ("1 rue Mme DELMAS", "47000", "AGEN")
    assert one.place.structure_id == "1810004421" and one.place.vendor_location_id == "1"
    two = slots["ExampleSlotPSIndiv2"]
    assert two.bookable is False and two.booking_url is None           # WALKIN, no comment
    assert two.types == ["PRO"] and two.place.line == "30 rue Mme DELMAS"  # second place of the same doctor
    three = slots["ExampleSlotPSIndiv3"]
    assert three.types == ["PUBLIC", "PRO"] and three.modes == ["VR"]
    assert three.motive == "Visite de contrôle / Consultation de suivi pneumologie"
    assert three.specialties == ["SM41"]                # "Pneumologie" text → SM41, not duplicated
    assert three.place.phone == "+33658913859"
    assert slots["ExampleSlotPSIndiv4"].modes == ["HH"]


def test_example_ids_with_bad_check_digit_are_flagged_and_kept(mapper):
    result = mapper.map_bundle(load("ps_individual.json"), search="ps")
    assert len(result.records) == 4
    assert all(r.national_id_check_ok is False for r in result.records)
    assert result.flags["national_id_bad_check_digit"] == 4
    assert rpps_check_ok("810002909371") and not rpps_check_ok("810100050075")


def test_cpts_through_two_communities(mapper):
    result = mapper.map_bundle(load("cpts_two_communities.json"), search="cpts")
    (slot,) = result.records
    assert slot.types == ["PUBLIC", "CPTS"]
    # The guide's ``1`` + FINESS (1950047225) becomes the directory's FINESS, as ``sas.cpts_finess`` holds it.
    assert slot.cpts == [
        {"finess": "950047225", "name": "CPTS AXE MAJEUR", "phone": "+33102030405"},
        {"finess": "950046227", "name": "CPTS VAL D OISE CENTRE", "phone": "+33139599280"},
    ]
    assert slot.start == datetime(2024, 6, 12, 14, 40, tzinfo=timezone.utc)   # +02:00 read correctly
    assert slot.place.city == "Aussonne" and slot.place.phone == "+33561855977"
    assert slot.national_id_check_ok is True
    one = mapper.map_bundle(load("cpts_one_community.json"), search="cpts").records[0]
    assert [c["name"] for c in one.cpts] == ["CPTS AXE MAJEUR"]


def test_sos_medecins_example(mapper):
    result = mapper.map_bundle(load("sos.json"), search="sos")
    assert not result.rejected
    slots = by_id(result)
    assert len(slots) == 4
    one = slots["ExampleSlotSOS1"]
    # ``3`` + SIRET on the wire, the directory's bare SIRET in the record (what the batch and offers hold).
    assert one.roster_key == "34173748400020" and one.practitioner_national_id is None
    assert one.sos == {"association_siret": "34173748400020", "association_name": "SOS Médecins de Rennes",
                       "place_name": "Centre de consultation Rennes Nord", "place_phone": "+33193246789",
                       "opening_hours": "mar-dim 08:00-19:00"}
    assert one.types == ["PUBLIC", "SNP"] and one.modes == ["AMB", "VR"]
    assert one.booking_url == "http://www.editeur.com/agenda-pfg/creneau1"
    assert slots["ExampleSlotSOS2"].sos["opening_hours"] == "lun-jeu 09:00-21:00"
    assert slots["ExampleSlotSOS3"].sos["opening_hours"] == "mar,jeu,sam 11:00-18:00"
    assert slots["ExampleSlotSOS4"].sos["association_name"] == "SOS Médecins Lorient et agglomération"


def test_vendor_quirks_are_tolerated(mapper):
    bundle = load("ps_individual.json")
    for entry in bundle["entry"]:
        entry["search"]["mode"] = "match"                      # everything claims to be a match
        resource = entry["resource"]
        if resource["resourceType"] == "Slot":
            resource["start"] = resource["start"].replace(".000+00:00", "Z")
            if resource["id"] == "ExampleSlotPSIndiv2":    # same instants written in Paris summer time
                resource["start"], resource["end"] = "2021-11-05T13:00:00+02:00", "2021-11-05T13:30:00+02:00"
            # absolute reference to the Schedule
            resource["schedule"]["reference"] = "https://exemple.com/ans-sas/" + resource["schedule"]["reference"]
    result = mapper.map_bundle(bundle, search="ps")
    slots = by_id(result)
    assert len(slots) == 4 and not result.rejected
    one = slots["ExampleSlotPSIndiv1"]
    assert one.start == datetime(2021, 11, 5, 9, 0, tzinfo=timezone.utc)
    assert one.end == datetime(2021, 11, 5, 9, 30, tzinfo=timezone.utc)
    assert slots["ExampleSlotPSIndiv2"].start == datetime(2021, 11, 5, 11, 0, tzinfo=timezone.utc)


def test_text_only_specialty_is_mapped_to_its_code(mapper):
    bundle = load("ps_individual.json")
    slot = next(e["resource"] for e in bundle["entry"] if e["resource"]["id"] == "ExampleSlotPSIndiv2")
    slot["specialty"] = [{"text": "Médecine générale"}, {"text": "Soins de licorne"}]
    result = mapper.map_bundle(bundle, search="ps")
    two = by_id(result)["ExampleSlotPSIndiv2"]
    assert two.specialties == ["SM54"] and two.specialty_texts == ["Soins de licorne"]
    assert result.flags["specialty_text_unknown"] == 1


def test_one_bad_resource_never_drops_the_bundle(mapper):
    bundle = load("ps_individual.json")
    good = copy.deepcopy(bundle["entry"][0])
    broken = [
        {"fullUrl": "x/Slot/no-schedule",
         "resource": {**good["resource"], "id": "no-schedule", "schedule": {"reference": "Schedule/nope"}}},
        {"fullUrl": "x/Slot/bad-time", "resource": {**good["resource"], "id": "bad-time", "start": "demain"}},
        {"fullUrl": "x/Slot/backwards",
         "resource": {**good["resource"], "id": "backwards", "end": "2021-11-05T08:00:00Z"}},
        {"fullUrl": "x/Slot/busy", "resource": {**good["resource"], "id": "busy", "status": "busy"}},
        {"fullUrl": "x/Slot/noid", "resource": {k: v for k, v in good["resource"].items() if k != "id"}},
        {"fullUrl": "x/Slot/weird", "resource": {**good["resource"], "id": "weird", "meta": "PUBLIC"}},
        {"fullUrl": "x/nothing"},
    ]
    bundle["entry"] = broken + bundle["entry"]
    result = mapper.map_bundle(bundle, search="ps")
    assert len(result.records) == 4
    assert result.rejected == {"schedule_not_found": 1, "bad_slot_time": 1, "slot_ends_before_start": 1,
                               "slot_not_free": 1, "slot_without_id": 1, "malformed_slot": 1,
                               "entry_without_resource": 1}


def test_unrequested_practitioners_are_refused(mapper):
    result = mapper.map_bundle(load("ps_individual.json"), search="ps", requested=["810100050075"])
    assert {r.practitioner_national_id for r in result.records} == {"810100050075"}
    assert result.rejected == {"practitioner_not_requested": 2}


def test_not_a_bundle_is_an_error_not_an_empty_truth(mapper):
    with pytest.raises(BundleError):
        mapper.map_bundle({"resourceType": "OperationOutcome"}, search="ps")
    with pytest.raises(BundleError):
        mapper.map_bundle([1, 2], search="ps")
    empty = mapper.map_bundle({"resourceType": "Bundle", "type": "searchset", "total": 0}, search="ps")
    assert empty.records == [] and not empty.rejected


@pytest.mark.parametrize("value, expected", [
    ("2021-11-05T09:00:00.000+00:00", datetime(2021, 11, 5, 9, 0, tzinfo=timezone.utc)),
    ("2021-11-05T09:00:00Z", datetime(2021, 11, 5, 9, 0, tzinfo=timezone.utc)),
    ("2024-06-12T16:40:00.000+02:00", datetime(2024, 6, 12, 14, 40, tzinfo=timezone.utc)),
    ("2024-01-12T16:40:00", datetime(2024, 1, 12, 15, 40, tzinfo=timezone.utc)),   # no offset: Paris time
])
def test_instants(value, expected):
    assert parse_instant(value)[0] == expected


@pytest.mark.parametrize("value", ["2021-11-05T09:00:00.000+00:00", "2021-11-05T09:00:00Z",
                                   "2024-06-12T16:40:00.250+02:00", "2024-01-12T16:40:00", "2024-06-12T16:40:00-00:00"])
def test_instant_text_is_the_utc_instants_isoformat(value):
    # The mapper's cached text must be what formatting the record's datetime gives, or every slot's content
    # hash would change (and every slot be rewritten) with the cache.
    from connectors.vendors.mapping import _read_instant

    moment, has_offset, text = _read_instant(value)
    assert (moment, has_offset) == parse_instant(value)
    assert moment is not None and text == moment.isoformat() and text.endswith("+00:00")
    assert _read_instant("9 h 40") == (None, False, None)
