"""geopy's BANFrance against a local server that speaks the BAN ``/search/`` GeoJSON protocol."""

from urllib.parse import parse_qs, urlparse

from connectors.directory.records import Address
from connectors.geocoding import BanCache, BanGeocoder, Geocoder
from tests.unit.directory.conftest import json_body


def _ban_answer(kind: str, score: float, citycode: str = "14118", postcode: str = "14000"):
    def handler(method, path, headers):
        parsed = urlparse(path)
        if parsed.path not in ("/search", "/search/"):
            return 404, "application/json", b"{}"
        query = parse_qs(parsed.query)["q"][0]
        feature = {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [-0.36311, 49.18305]},
            "properties": {"label": query, "score": score, "type": kind, "postcode": postcode,
                           "citycode": citycode, "city": "Caen", "housenumber": "12", "street": "Rue de la Paix"},
        }
        return 200, "application/json", json_body({"type": "FeatureCollection", "version": "draft",
                                                   "features": [feature], "query": query, "limit": 1})
    return handler


ADDRESS = Address(number="12", street_type="Rue", street="DE LA PAIX", postcode="14000", city="CAEN")


def test_housenumber_answer_gives_address_precision(local_server, gazetteer, tmp_path):
    server = local_server(_ban_answer("housenumber", 0.93))
    ban = BanGeocoder(server.url, cache=BanCache(tmp_path / "ban.sqlite"))
    geocoder = Geocoder(gazetteer, ban=ban)
    found = geocoder.geocode(ADDRESS)
    assert (found.source, found.precision) == ("ban", "address")
    assert (found.lat, found.lon) == (49.18305, -0.36311)
    assert "DE LA PAIX" in parse_qs(urlparse(server.requests[0][1]).query)["q"][0]
    # Cached (in memory, and on disk for the next run): no second request.
    geocoder.geocode(ADDRESS)
    assert len(server.requests) == 1
    again = BanGeocoder(server.url, cache=BanCache(tmp_path / "ban.sqlite"))
    assert Geocoder(gazetteer, ban=again).geocode(ADDRESS).precision == "address"
    assert len(server.requests) == 1


def test_street_answer_and_weak_or_foreign_answers(local_server, gazetteer):
    street = local_server(_ban_answer("street", 0.8))
    assert Geocoder(gazetteer, ban=BanGeocoder(street.url)).geocode(ADDRESS).precision == "street"
    weak = local_server(_ban_answer("housenumber", 0.2))
    found = Geocoder(gazetteer, ban=BanGeocoder(weak.url)).geocode(ADDRESS)
    assert (found.source, found.precision) == ("gazetteer", "municipality")
    elsewhere = local_server(_ban_answer("housenumber", 0.9, citycode="75115", postcode="75015"))
    geocoder = Geocoder(gazetteer, ban=BanGeocoder(elsewhere.url))
    assert geocoder.geocode(ADDRESS).source == "gazetteer"
    assert geocoder.stats["ban_other_departement"] == 1


def test_ban_failure_falls_back_to_the_gazetteer(local_server, gazetteer):
    broken = local_server(lambda m, p, h: (500, "text/plain", b"boom"))
    geocoder = Geocoder(gazetteer, ban=BanGeocoder(broken.url, timeout_s=2))
    found = geocoder.geocode(ADDRESS)
    assert (found.source, found.insee) == ("gazetteer", "14118")
    assert geocoder.stats["ban_error"] == 1


def test_addresses_without_street_do_not_call_ban(local_server, gazetteer):
    server = local_server(_ban_answer("housenumber", 0.9))
    Geocoder(gazetteer, ban=BanGeocoder(server.url)).geocode(Address(postcode="14000", city="CAEN"))
    assert server.requests == []
