"""The guide's FAQ for vendors (``input/pagecontent/faq.md``, "Agrégateur PS à titre individuel - CPTS" and
"Agrégateur SOS Médecins": the questions and "principales erreurs rencontrées au cours des tests"): rules
the certification relies on beyond the profiles."""

from __future__ import annotations

import re

import pytest

from tests.conformance import profiles as p
from tests.conformance.slots.conftest import MULTI, PAIR, SOS_LORIENT, SOS_RENNES

SOS_IDS = ["3" + SOS_RENNES, "3" + SOS_LORIENT]
PHONE = re.compile(r"^\+(33|262|590|596|594)\d{9}$")


def _answers(scenario, bed):
    return [("int_r01", scenario("search_multiple_ps")), ("int_r04", scenario("two_cpts")),
            ("int_r04_many", scenario("options_cpts")), ("sos", bed.sos(SOS_IDS))]


def _locations(answer) -> list[dict]:
    contained = [c for r in answer.of_type("PractitionerRole") for c in r.get("contained") or []
                 if c.get("resourceType") == "Location"]
    return contained + answer.of_type("Location")


def test_faq_identifier_fields(scenario, bed):
    """FAQ "Quels champs de l'élément identifier des ressources FrLocation et FrPractitioner (SOS: FrLocation et
    FrOrganization) sont obligatoires ?": identifier.system, identifier.type and identifier.value."""
    for name, answer in _answers(scenario, bed):
        resources = answer.of_type("Practitioner") + _locations(answer)
        if name == "sos":
            resources += answer.of_type("Organization")
        assert resources
        for resource in resources:
            identifiers = resource.get("identifier") or []
            assert identifiers, f"{name}: {resource['resourceType']}/{resource.get('id')} has no identifier"
            for identifier in identifiers:
                missing = [k for k in ("system", "type", "value") if not identifier.get(k)]
                assert not missing, (f"{name}: {resource['resourceType']}/{resource.get('id')} "
                                     f"identifier lacks {missing}")


def test_faq_phone_format(scenario, bed):
    """FAQ erreur 2 "Format du numéro de téléphone": every phone written +33XXXXXXXXX (kit ps_validate_phone also
    accepts the overseas +262 / +590 / +596 / +594)."""
    for name, answer in _answers(scenario, bed):
        resources = answer.resources + _locations(answer)
        phones = [t.get("value") for r in resources for t in r.get("telecom") or [] if t.get("system") == "phone"]
        assert phones, name
        bad = [phone for phone in phones if not PHONE.match(phone or "")]
        assert not bad, f"{name}: {bad[:3]}"


@pytest.mark.parametrize("name", ["single_location", "multi_lieux", "two_cpts"])
def test_faq_comment_is_agenda_url(scenario, name):
    """FAQ "Quelle URL doit être transmise dans l'élément comment ?" (PS, CPTS): the redirection URL of the
    practitioner's agenda, not the slot's URL — one URL per agenda, naming no slot (the guide's examples: every
    slot carries https://exemple.com/rdv/com/)."""
    answer = scenario(name)
    by_schedule: dict[str, set[str]] = {}
    for slot in answer.of_type("Slot"):
        if not slot.get("comment"):
            continue
        assert slot["id"] not in slot["comment"], f"{slot['comment']} is the URL of slot {slot['id']}"
        by_schedule.setdefault(slot["schedule"]["reference"], set()).add(slot["comment"])
    assert by_schedule
    for schedule, urls in by_schedule.items():
        assert len(urls) == 1, f"{schedule}: {len(urls)} booking URLs, one agenda URL expected"


def test_faq_multiple_places(scenario):
    """FAQ erreur 7 "Gestion des multiples lieux de consultation": every slot of a PS with two places comes back,
    attached to the right place — one Schedule per PractitionerRole (FAQ "ressource discriminante"), each
    place with slots, the places' addresses those of the directory."""
    answer = scenario("multi_lieux")
    places = {}
    for slot in answer.of_type("Slot"):
        schedule = answer.resolve(slot["schedule"]["reference"])
        role = next(answer.resolve(a["reference"]) for a in schedule["actor"]
                    if a["reference"].startswith("PractitionerRole/"))
        line = role["contained"][0]["address"]["line"][0]
        places.setdefault(schedule["id"], set()).add(line)
    assert len(places) == 2 and all(len(lines) == 1 for lines in places.values())
    assert sorted(next(iter(lines)) for lines in places.values()) == ["2 rue Montesquieu", "30 rue Madame Delmas"]
    assert answer.requested_ids == [MULTI]


def test_faq_multiple_ps(scenario):
    """FAQ erreur 8 "Gestion des multiples PS": every PS searched has his slots, each slot attached to its PS."""
    answer = scenario("search_multiple_ps")
    owners = set()
    for slot in answer.of_type("Slot"):
        schedule = answer.resolve(slot["schedule"]["reference"])
        practitioner = next(answer.resolve(a["reference"]) for a in schedule["actor"]
                            if a["reference"].startswith("Practitioner/"))
        owners.add(practitioner["identifier"][0]["value"])
    assert owners == set(PAIR)


def test_faq_multiple_pfg(bed):
    """FAQ SOS erreur 4 "Gestion des multiples PFG": an association with two fixed places gets the slots of both,
    each Schedule one Location (FAQ SOS "ressource discriminante": 1 Schedule pour 1 Location)."""
    answer = bed.sos(["3" + SOS_RENNES])
    locations = set()
    for slot in answer.of_type("Slot"):
        schedule = answer.resolve(slot["schedule"]["reference"])
        assert len(schedule["actor"]) == 1
        locations.add(schedule["actor"][0]["reference"])
    assert len(locations) == 2
    for reference in locations:
        location = answer.resolve(reference)
        organization = answer.resolve(location["managingOrganization"]["reference"])
        assert organization["identifier"][0]["value"] == "3" + SOS_RENNES


def test_faq_no_slot_empty_bundle(bed):
    """FAQ SOS erreur 5 "Gestion de l'absence de créneaux": an association unknown to the solution → an empty
    searchset Bundle (the FAQ's example declares sas-sos-bundle-aggregator)."""
    answer = bed.sos(["399999999999999"])
    assert answer.status == 200 and answer.body.get("resourceType") == "Bundle"
    assert answer.body.get("type") == "searchset" and answer.body.get("total") == 0 and not answer.of_type("Slot")
    assert p.BUNDLE_SOS in p.declared_profiles(answer.body)
