import pytest

from connectors.directory.records import Address
from connectors.geocoding import (
    Geocoder,
    GeoFailure,
    GeoResult,
    departements_of_postcode,
    district_for_postcode,
    normalize_city,
)


@pytest.mark.parametrize("raw, expected", [
    ("ST-ETIENNE CEDEX 1", "saint etienne"),
    ("Saint-Étienne", "saint etienne"),
    ("STE FOY LES LYON", "sainte foy les lyon"),
    ("PARIS CEDEX 15", "paris 15"),
    ("Paris 15e Arrondissement", "paris 15"),
    ("MARSEILLE 1ER", "marseille 1"),
    ("Marseille 1er Arrondissement", "marseille 1"),
    ("LYON 03", "lyon 3"),
    ("CAEN CEDEX 4", "caen"),
    ("L'Abergement-Clémenciat", "l abergement clemenciat"),
])
def test_normalize_city(raw, expected):
    assert normalize_city(raw) == expected


def test_district_and_departement_helpers():
    assert district_for_postcode("75015") == "75115"
    assert district_for_postcode("75116") == "75116"
    assert district_for_postcode("69003") == "69383"
    assert district_for_postcode("13016") == "13216"
    assert district_for_postcode("75021") is None
    assert departements_of_postcode("20000") == ("2A", "2B")
    assert departements_of_postcode("97400") == ("974",)


def test_insee_code_wins(gazetteer):
    found = gazetteer.locate(postcode="14000", insee="14118", city="anything")
    assert isinstance(found, GeoResult) and found.insee == "14118" and found.precision == "municipality"


def test_cedex_postcode_falls_back_to_the_city_in_its_departement(gazetteer):
    found = gazetteer.locate(postcode="14052", city="CAEN", cedex_line="14052 CAEN CEDEX 4")
    assert found.insee == "14118" and found.precision == "municipality"


def test_paris_arrondissements(gazetteer):
    assert gazetteer.locate(postcode="75015", city="PARIS").insee == "75115"
    assert gazetteer.locate(postcode="75016", city="PARIS").insee == "75116"  # listed as 75116 by La Poste
    assert gazetteer.locate(postcode="75007", insee="75056", city="PARIS").insee == "75107"
    assert gazetteer.locate(postcode="75739", cedex_line="75739 PARIS CEDEX 15").insee == "75115"
    assert gazetteer.locate(postcode="13008", city="MARSEILLE").insee == "13208"


def test_saint_abbreviation(gazetteer):
    found = gazetteer.locate(postcode="42000", city="ST ETIENNE")
    assert found.insee == "42218"


def test_ambiguous_city_gives_postcode_precision(gazetteer):
    found = gazetteer.locate(postcode="01400", city="LIEU-DIT LES BRUYERES")
    assert found.precision == "postcode" and found.insee is None and found.departement == "01"
    communes = gazetteer.by_postcode["01400"]
    assert len(communes) > 1
    assert min(c.lat for c in communes) <= found.lat <= max(c.lat for c in communes)


def test_unplaceable_addresses_are_failures_never_points(gazetteer):
    assert gazetteer.locate() == GeoFailure("no_address", None)
    failure = gazetteer.locate(postcode="14999", city="NOWHERE-SUR-MER")
    assert isinstance(failure, GeoFailure) and failure.reason == "unknown_commune" and failure.departement == "14"


def test_geocoder_without_ban_uses_the_gazetteer(gazetteer):
    geocoder = Geocoder(gazetteer)
    found = geocoder.geocode(Address(number="12", street="DE LA PAIX", postcode="14000", city="CAEN"))
    assert found.source == "gazetteer" and found.insee == "14118"
