"""Harvest test helpers: a real vendor simulator on a free port, offers written through the real model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from bench.common import free_port
from mappings.common import GeoPoint
from mappings.offers import OfferAddress, OfferDoc, OfferSas, OfferSos
from mappings.registry import alias_name
from sas_core.text import fold
from simulator.app import Simulator
from simulator.roster import Roster, rosters_from_offers
from simulator.server import ServerTls, SimulatorThread

FHIR = Path(__file__).resolve().parents[2] / "data" / "fhir"


def fixture_bundle(name: str) -> dict:
    return json.loads((FHIR / name).read_text(encoding="utf-8"))


def luhn_national_id(n: int) -> str:
    """A valid ``8`` + RPPS national id (Luhn key computed)."""
    from connectors.directory.ids import luhn_key

    body = f"1{n:09d}"
    return "8" + body + luhn_key(body)


def practitioner_offer(*, offer_id: str, national_id: str, vendor: str | None, line: str, postcode: str, city: str,
                       lat: float, lon: float, departement: str, family: str = "MARTIN", given: str = "Claire",
                       specialties: list[str] | None = None, cpts: tuple[str, str] | None = None) -> dict:
    name = f"{given} {family}"
    return OfferDoc(
        id=offer_id, kind="ps", national_id=national_id, national_id_type="rpps", last_name=family, first_name=given,
        name=name, name_folded=fold(name), specialties=specialties or ["SM54"],
        address=OfferAddress(line=line, postcode=postcode, city=city, city_folded=fold(city),
                             text=f"{line}, {postcode} {city}"),
        departement=departement, territory=f"SAS-{departement}", location=GeoPoint(lat=lat, lon=lon),
        phones=["+33553000000"],
        sas=OfferSas(participates=True, vendor=vendor, cpts_finess=cpts[0] if cpts else None,
                     cpts_name=cpts[1] if cpts else None),
        source="rpps",
    ).model_dump(mode="json")


def sos_offer(*, offer_id: str, siret: str, association: str, name: str, line: str, postcode: str, city: str,
              lat: float, lon: float, departement: str, vendor: str | None = None) -> dict:
    return OfferDoc(
        id=offer_id, kind="sos", name=name, name_folded=fold(name),
        address=OfferAddress(line=line, postcode=postcode, city=city, city_folded=fold(city)),
        departement=departement, territory=f"SAS-{departement}", location=GeoPoint(lat=lat, lon=lon),
        sos=OfferSos(association_siret=siret, association_name=association),
        sas=OfferSas(participates=True, vendor=vendor),
        source="finess",
    ).model_dump(mode="json")


def write_offers(es, settings, offers: list[dict]) -> None:
    from elasticsearch import helpers

    index = alias_name(settings.index_prefix, "offers")
    helpers.bulk(es, ({"_index": index, "_id": o["id"], "_source": o} for o in offers), refresh=True)


class Town(NamedTuple):
    """Where ``town_offers`` puts its practitioners, and the CPTS every third one belongs to (if any)."""

    postcode: str
    city: str
    lat: float
    lon: float
    cpts: tuple[str, str] | None = None


AGEN_TOWN = Town("47000", "Agen", 44.2033, 0.6163, cpts=("470000011", "CPTS du Grand Agen"))


def town_offers(vendor: str, count: int, *, start: int, town: Town = AGEN_TOWN) -> list[dict]:
    """``count`` practitioners of ``vendor`` in ``town`` (Agen, 47), one place each; every third in the town's
    CPTS."""
    return [practitioner_offer(
        offer_id=f"{vendor}-{i}", national_id=luhn_national_id(start + i), vendor=vendor,
        line=f"{i + 1} rue Montesquieu",
        postcode=town.postcode, city=town.city, lat=town.lat + i / 10000, lon=town.lon,
        departement=town.postcode[:2], cpts=town.cpts if i % 3 == 0 else None) for i in range(count)]


@pytest.fixture
def run_simulator() -> Iterator:
    """``run_simulator(offers_or_rosters, https=ServerTls|None, fixtures={...})`` → started simulator thread."""
    started: list[SimulatorThread] = []

    def start(offers: list[dict] | None = None, *, rosters=None, https: ServerTls | None = None,
              fixtures: dict[str, dict[str, list[dict]]] | None = None, taken_share: float = 0.0):
        port = free_port()
        rosters = rosters if rosters is not None else rosters_from_offers(offers or [])
        for name in fixtures or {}:
            rosters.setdefault(name, Roster())
        simulator = Simulator(rosters, public_url=f"http://127.0.0.1:{port}", taken_share=taken_share)
        for name, by_search in (fixtures or {}).items():
            simulator.vendors[name].fixtures = by_search
        thread = SimulatorThread(simulator, port=port, https_port=free_port() if https else None, tls=https).start()
        started.append(thread)
        return thread

    yield start
    for thread in started:
        thread.stop()
