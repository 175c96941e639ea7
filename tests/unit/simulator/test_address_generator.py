"""The BAN-format address files the directory generator writes: read back by the real parser, every address
lies inside its commune, and none is thrown into the sea."""

from __future__ import annotations

import math

from connectors.addresses import AddressRecord, read_ban
from simulator.generate.addresses import commune_radius_km


def test_generated_addresses_lie_inside_their_commune(tmp_path):
    """Point 3: the generator's BAN file, read back by the real parser, places every address within its
    commune's radius and nearer its own centroid than any other commune's (so in its own département)."""
    from connectors.reference import load_communes
    from sas_core.settings import Settings
    from simulator.generate.directory import generate_directory

    generated = generate_directory(out_dir=tmp_path, places=600, departements=["47", "33", "75"], seed=7)
    assert sorted(p.name for p in generated.addresses) == ["adresses-33.csv", "adresses-47.csv", "adresses-75.csv"]
    communes = {c.insee: c for c in load_communes(Settings().reference_data_dir)}
    records = [r for path in generated.addresses for r in read_ban(path)]
    assert records and all(isinstance(r, AddressRecord) for r in records)
    points = set()
    for r in records:
        c = communes[r.insee]
        assert r.postcode in c.postcodes and r.id.startswith(r.insee + "_")
        north = (r.lat - c.lat) * 111.32
        east = (r.lon - c.lon) * 111.32 * math.cos(math.radians(c.lat))
        assert math.hypot(north, east) <= 1.1 * commune_radius_km(c) + 0.05, r
        assert r.insee[:2] == c.departement[:2]
        points.add((r.lat, r.lon))
    assert len(points) > 0.9 * len(records)   # distinct positions, not one point per commune
    # Deterministic: the same seed writes the same file.
    again = generate_directory(out_dir=tmp_path / "again", places=600, departements=["47", "33", "75"], seed=7)
    assert (tmp_path / "again" / "adresses-33.csv").read_bytes() == (tmp_path / "adresses-33.csv").read_bytes()
    assert again.addresses


def test_coastal_addresses_stay_ashore():
    """Towards the sea (no commune centroid that way), Biarritz's addresses stay near its centroid, while
    Bordeaux's spread over the town: the generator never throws a practice place into the Atlantic."""
    from connectors.reference import load_communes
    from sas_core.settings import Settings
    from simulator.generate.addresses import SHORE_KM, AddressBook

    communes = load_communes(Settings().reference_data_dir)
    by_insee = {c.insee: c for c in communes}
    book = AddressBook(communes)
    spread = {}
    for insee in ("64122", "33063"):
        c = by_insee[insee]
        furthest_west = 0.0
        furthest = 0.0
        for n in range(300):
            lat, lon = book.register(c, str(1 + n % 180), "", "Rue", f"TEST {n}")
            north = (lat - c.lat) * 111.32
            east = (lon - c.lon) * 111.32 * math.cos(math.radians(c.lat))
            furthest = max(furthest, math.hypot(north, east))
            bearing = math.degrees(math.atan2(east, north)) % 360
            if 250 <= bearing <= 340:                 # west-north-west: the ocean at Biarritz
                furthest_west = max(furthest_west, math.hypot(north, east))
        spread[insee] = (furthest_west, furthest)
    assert spread["64122"][0] <= SHORE_KM + 0.02, spread
    assert spread["33063"][1] > 2.0, spread                  # Bordeaux's addresses cover the town
