"""Resolving search parameters: roles → slot types, windows, specialties, places, booking URLs."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from connectors.directory.nomenclatures import load_specialties
from sas_core.errors import BadRequest
from sas_core.settings import Settings
from search_api.auth import Principal, Role
from search_api.geocode import PlaceResolver, origin_from_coordinates
from search_api.params import enum_values, resolve_window, split_values
from search_api.query import clauses
from search_api.query.model import coarser
from search_api.search_service import with_origin_sas
from search_api.specialties import SpecialtyResolver
from search_api.visibility import SlotVisibility, visibility_for

NOW = datetime(2025, 11, 5, 7, 0, tzinfo=timezone.utc)
PARIS = ZoneInfo("Europe/Paris")


def _principal(*roles: Role, **extra) -> Principal:
    return Principal(sub="u", roles=frozenset(roles), **extra)


# --- Visibility --------------------------------------------------------------------------------------------


def test_regulators_and_osnp_see_every_type():
    for role in (Role.REGULATOR, Role.OSNP, Role.ADMIN):
        visibility = visibility_for(_principal(role))
        assert visibility.sees_everything
        assert clauses.visible_types(visibility) is None


def test_practitioners_see_public_pro_and_their_own_cpts():
    visibility = visibility_for(_principal(Role.EFFECTEUR, structure_id="470012345"))
    assert visibility.types == {"PUBLIC", "PRO"} and visibility.cpts_finess == {"470012345"}
    assert visibility.allows(types=["PRO"])
    assert not visibility.allows(types=["SNP"])
    assert visibility.allows(types=["CPTS"], cpts_finess=["470012345"])
    assert not visibility.allows(types=["CPTS"], cpts_finess=["330000000"])
    assert visibility_for(_principal(Role.EFFECTEUR)).cpts_finess == frozenset()


def test_integrators_see_public_plus_granted_types():
    assert visibility_for(_principal(Role.INTEGRATOR)).types == {"PUBLIC"}
    granted = visibility_for(_principal(Role.INTEGRATOR, slot_types=frozenset({"PRO", "BOGUS"})))
    assert granted.types == {"PUBLIC", "PRO"}
    assert clauses.visible_types(granted) == {"terms": {"types": ["PRO", "PUBLIC"]}}


def test_several_roles_see_the_union_and_no_role_sees_nothing():
    both = visibility_for(_principal(Role.INTEGRATOR, Role.EFFECTEUR, structure_id="470012345"))
    assert both.types == {"PUBLIC", "PRO"} and both.cpts_finess == {"470012345"}
    nothing = visibility_for(_principal(Role.VENDOR))
    assert nothing == SlotVisibility(types=frozenset())
    assert clauses.visible_types(nothing) == {"bool": {"must_not": {"match_all": {}}}}


def test_auth_reads_the_slot_types_claim():
    from search_api.auth import principal_from_claims

    principal = principal_from_claims({"sub": "k", "roles": ["integrator"], "slot_types": "pro SNP"})
    assert principal.slot_types == {"PRO", "SNP"}
    assert principal_from_claims({"sub": "k", "roles": ["integrator"]}).slot_types == frozenset()


# --- Clauses -------------------------------------------------------------------------------------------------


def test_empty_criteria_give_no_clause():
    assert clauses.slot_modes(()) is None
    assert clauses.slot_kinds(()) is None
    assert clauses.slot_specialties(()) is None
    assert clauses.slot_sectors(()) is None
    assert clauses.bookable(False) is None
    assert clauses.restrict_offers(()) is None
    assert clauses.offer_specialties(()) is None
    assert clauses.unavailable_slots(clauses.Exclusions()) == []


def test_clause_values_are_sorted_and_unique():
    assert clauses.slot_modes(("VR", "AMB", "VR")) == {"terms": {"modes": ["AMB", "VR"]}}


def test_dates_in_bodies_are_utc_and_never_naive():
    assert clauses.iso(datetime(2025, 11, 5, 8, 0, tzinfo=PARIS)) == "2025-11-05T07:00:00.000Z"
    with pytest.raises(ValueError):
        clauses.iso(datetime(2025, 11, 5, 8, 0))
    assert clauses.km(5.0) == "5km" and clauses.km(0.5) == "0.5km"


# --- Windows ---------------------------------------------------------------------------------------------------


def test_default_window_is_now_plus_48_hours():
    window = resolve_window(now=NOW, start=None, end=None, within=None)
    assert (window.start, window.end) == (NOW, NOW + timedelta(hours=48))


def test_within_buckets():
    window = resolve_window(now=NOW, start=None, end=None, within="4-8h")
    assert (window.start, window.end) == (NOW + timedelta(hours=4), NOW + timedelta(hours=8))
    window = resolve_window(now=NOW, start=None, end=None, within="48-72H")
    assert window.end - window.start == timedelta(hours=24)


def test_naive_times_are_paris_time_and_the_window_never_starts_in_the_past():
    window = resolve_window(now=NOW, start="2025-11-05T14:00:00", end=None, within=None)
    assert window.start == datetime(2025, 11, 5, 13, 0, tzinfo=timezone.utc)
    assert window.end == window.start + timedelta(hours=48)
    earlier = resolve_window(now=NOW, start="2025-11-04T10:00:00Z", end="2025-11-05T12:00:00Z", within=None)
    assert earlier.start == NOW


def test_split_and_enum_values():
    assert split_values(["AMB,VR", " HH "]) == ["AMB", "VR", "HH"]
    assert enum_values(["amb", "AMB"], allowed=("AMB", "HH"), name="modes", upper=True) == ("AMB",)
    with pytest.raises(BadRequest, match="unknown kinds"):
        enum_values(["pharmacy"], allowed=("ps",), name="kinds", upper=False)


# --- Specialties ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def specialties() -> SpecialtyResolver:
    return SpecialtyResolver(load_specialties(Settings().reference_data_dir).labels)


def test_general_practice_means_the_three_codes(specialties):
    for asked in (["SM54"], ["SM26"], ["sm53"], ["Médecine générale"], ["medecin generaliste"],
                  ["Qualifié en Médecine générale"]):
        assert specialties.resolve(asked) == ("SM26", "SM53", "SM54"), asked


def test_labels_codes_and_lists(specialties):
    assert specialties.resolve(["Pédiatrie"]) == ("SM40",)
    assert specialties.resolve(["pediatrie,SM41"]) == ("SM40", "SM41")
    assert specialties.resolve(["dermatologie"]) == ("SM15",)       # the one label with that word
    assert specialties.resolve(None) == ()
    assert specialties.label("SM54") == "Médecine générale"


def test_unknown_specialties_are_refused_with_a_hint(specialties):
    with pytest.raises(BadRequest, match="unknown specialty code"):
        specialties.resolve(["SM99"])
    with pytest.raises(BadRequest, match="did you mean"):
        specialties.resolve(["chirurgie"])
    with pytest.raises(BadRequest, match="cardiologie et maladies vasculaires"):
        specialties.resolve(["cardiologie"])                           # two labels: say which


# --- Places ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def places() -> PlaceResolver:
    return PlaceResolver.from_settings(Settings())


@pytest.mark.parametrize(
    ("q", "insee", "precision"),
    [
        ("47000", "47001", "municipality"),
        ("Agen", "47001", "municipality"),
        ("47000 AGEN", "47001", "municipality"),
        ("1 rue Mme Delmas, 47000 Agen", "47001", "municipality"),
        ("Paris 15e", "75115", "municipality"),
        ("75015", "75115", "municipality"),
        ("12 rue de la Paix Caen", "14118", "municipality"),
        ("Saint Étienne", "42218", "municipality"),
        ("51300", None, "postcode"),
    ],
)
def test_places_from_text(places, q, insee, precision):
    origin = places.by_text(q)
    assert origin.insee == insee and origin.precision == precision


def test_places_from_insee_and_coordinates(places):
    assert places.by_insee("47001").label == "47000 Agen"
    with pytest.raises(BadRequest):
        places.by_insee("99999")
    assert origin_from_coordinates(44.2, 0.6).precision == "coordinates"
    with pytest.raises(BadRequest):
        origin_from_coordinates(91.0, 0.0)


def test_distance_precision_is_the_coarser_end():
    assert coarser("coordinates", "address") == "address"
    assert coarser("municipality", "address") == "municipality"
    assert coarser("postcode", "municipality") == "postcode"
    assert coarser("coordinates", None) is None


# --- Booking URLs ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://exemple.com/rdv/com/", "https://exemple.com/rdv/com/?origin=sas"),
        ("https://exemple.com/rdv?p=12&slot=3", "https://exemple.com/rdv?p=12&slot=3&origin=sas"),
        ("https://exemple.com/rdv?origin=web&p=1", "https://exemple.com/rdv?p=1&origin=sas"),
        ("https://exemple.com/rdv?p=1#slot-3", "https://exemple.com/rdv?p=1&origin=sas#slot-3"),
        ("https://exemple.com/rdv?", "https://exemple.com/rdv?origin=sas"),
        (None, None),
        ("", None),
    ],
)
def test_booking_url_gets_origin_sas(url, expected):
    assert with_origin_sas(url) == expected
