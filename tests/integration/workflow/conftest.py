"""Workflow test bed: Bordeaux (SAS-33) practitioners at two simulated vendors — ``medilib`` (redirect
mode) and ``agendax`` (the platform creates appointments) —, harvested into the real index by the real
harvester, an app wired to them, and helpers to serve the real app under uvicorn on loopback."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import httpx
import pytest
import uvicorn
import yaml
from elasticsearch import helpers

from bench.common import free_port
from mappings.accounts import AccountDoc
from mappings.common import GeoPoint
from mappings.offers import OfferAddress, OfferDoc, OfferSas
from mappings.registry import alias_name
from mappings.slots import DateRange, SlotDoc, SlotPlace
from sas_core.text import fold
from simulator.app import Simulator
from simulator.roster import rosters_from_offers
from simulator.server import SimulatorThread
from tests.integration.harvest.conftest import luhn_national_id

VENDORS = ("medilib", "agendax")
#: The practitioner and the regulator of the guide's INT_R03 examples (``tests/data/fhir/appointments``): both
#: vendors serve the practitioner (vendors-file roster) and the regulator has an account of SAS-33, or INT_R03
#: refuses the examples (a vendor reports only its practitioners' appointments, by known regulators).
GUIDE_PRACTITIONER = "810100050075"
GUIDE_REGULATOR = "3456780581/11242343"
STREETS = ["12 rue Sainte-Catherine", "4 cours de l'Intendance", "31 rue du Palais Gallien", "8 place Gambetta",
           "55 cours Victor Hugo", "17 rue Judaïque"]
NAMES = [("DUBERNET", "Hélène"), ("LAFARGUE", "Thomas"), ("CAZENAVE", "Marion"), ("LABORDE", "Julien"),
         ("ETCHEVERRY", "Sophie"), ("DARRIGADE", "Nicolas")]


def bordeaux_offer(i: int, *, vendor: str | None, beyond: bool = False) -> dict:
    family, given = NAMES[i % len(NAMES)]
    line = STREETS[i % len(STREETS)]
    name = f"{given} {family}"
    return OfferDoc(
        id=f"wf-{vendor or 'sas'}-{i}", kind="ps", national_id=luhn_national_id(330000 + i), national_id_type="rpps",
        last_name=family, first_name=given, name=name, name_folded=fold(name), profession_code="10",
        specialties=["SM54"], specialty_labels=["Médecine générale"],
        address=OfferAddress(line=line, postcode="33000", city="Bordeaux", city_folded="bordeaux",
                             text=f"{line}, 33000 Bordeaux"),
        departement="33", territory="SAS-33", location=GeoPoint(lat=44.8378 + i / 1000, lon=-0.5792 + i / 1000),
        phones=["+33556000000"],
        sas=OfferSas(participates=True, vendor=vendor, accepts_beyond=beyond,
                     beyond_phone="+33556112233" if beyond else None),
        source="rpps",
    ).model_dump(mode="json")


class ServerThread:
    """A real ASGI app under uvicorn in a background thread (``config`` built by the caller)."""

    def __init__(self, config: uvicorn.Config) -> None:
        self.server = uvicorn.Server(config)
        self.server.install_signal_handlers = lambda: None
        self.thread = threading.Thread(target=lambda: asyncio.run(self.server.serve()), daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc_info) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="package")
def wf_offers() -> dict[str, list[dict]]:
    return {
        "medilib": [bordeaux_offer(i, vendor="medilib") for i in range(4)],
        "agendax": [bordeaux_offer(10 + i, vendor="agendax") for i in range(3)],
        "agenda": [bordeaux_offer(20, vendor=None, beyond=True), bordeaux_offer(21, vendor=None)],
    }


@pytest.fixture(scope="package")
def simulator(wf_offers) -> Iterator[SimulatorThread]:
    port = free_port()
    offers = wf_offers["medilib"] + wf_offers["agendax"]
    sim = Simulator(rosters_from_offers(offers), public_url=f"http://127.0.0.1:{port}", taken_share=0.0)
    thread = SimulatorThread(sim, port=port).start()
    yield thread
    thread.stop()


@pytest.fixture(scope="package")
def wf_settings(settings, simulator, tmp_path_factory):
    folder = tmp_path_factory.mktemp("workflow")
    vendors_path = folder / "vendors.yaml"
    base = f"http://127.0.0.1:{simulator.port}"
    vendors_path.write_text(yaml.safe_dump({"defaults": {"timeout_s": 5, "max_attempts": 1, "rate_limit_per_s": 200},
                                       "vendors": [{"name": v, "base_url": f"{base}/{v}/fhir", "use_cases": ["ps"],
                                                    "roster": [GUIDE_PRACTITIONER]} for v in VENDORS]}))
    return settings.model_copy(update={"vendors_file": vendors_path, "booking_appointment_vendors": ["agendax"]})


@pytest.fixture(scope="package")
def harvested(es, indices, wf_settings, wf_offers, simulator):
    """The offers written, both vendors harvested (7 days) by the real harvester."""
    from indexer.harvest import run_harvest

    offers = [o for group in wf_offers.values() for o in group]
    index = alias_name(wf_settings.index_prefix, "offers")
    helpers.bulk(es, ({"_index": index, "_id": o["id"], "_source": o} for o in offers), refresh=True)
    runs = [run for vendor in VENDORS for run in run_harvest(es=es, settings=wf_settings, vendor=vendor, mode="full")]
    assert all(run["status"] == "success" for run in runs), runs
    es.indices.refresh(index=alias_name(wf_settings.index_prefix, "slots"))
    now = datetime.now(timezone.utc)
    account = AccountDoc(id="wf-guide-regulator", national_id=GUIDE_REGULATOR, family_name="RICART",
                         given_name="Pauline", email="pauline.ricart@sas33.test", roles=["regulator"],
                         territories=["SAS-33"], created_at=now, updated_at=now, last_login_at=now)
    es.index(index=alias_name(wf_settings.index_prefix, "accounts"), id=account.id,
             document=account.model_dump(mode="json"), refresh=True)
    return runs


@pytest.fixture(scope="package")
def wf_api(wf_settings, es, harvested):
    from fastapi.testclient import TestClient

    from search_api.app import create_app

    with TestClient(create_app(wf_settings, es=es)) as client:
        yield client


@pytest.fixture
def free_slot(es, wf_settings):
    """``free_slot("medilib")``: a bookable, visible vendor slot starting more than an hour from now,
    never handed out twice in a session."""
    handed: set[str] = set()

    def pick(vendor: str) -> dict:
        now = datetime.now(timezone.utc)
        body = {"size": 200, "sort": [{"start": "asc"}], "query": {"bool": {"filter": [
            {"term": {"vendor": vendor}}, {"term": {"bookable": True}},
            {"range": {"start": {"gt": (now + timedelta(hours=1)).isoformat()}}}],
            "must_not": [{"term": {"hidden": True}}]}}}
        hits = es.search(index=alias_name(wf_settings.index_prefix, "slots"), body=body)["hits"]["hits"]
        for hit in hits:
            # booking_url is kept in _source only (not searchable): filtered here.
            if hit["_source"].get("booking_url") and hit["_id"] not in handed and hit["_id"] not in _HANDED:
                handed.add(hit["_id"])
                _HANDED.add(hit["_id"])
                return hit["_source"]
        raise AssertionError(f"no free slot left at {vendor}")

    return pick


_HANDED: set[str] = set()


def agenda_slot(es, settings, offer: dict, *, capacity: int | None, hours_ahead: int = 5) -> str:
    """An own-agenda slot (``source = "sas"``) of ``offer``, written through the real model."""
    start = (datetime.now(timezone.utc) + timedelta(hours=hours_ahead)).replace(microsecond=0)
    end = start + timedelta(minutes=20 if capacity is None else 120)
    slot_id = f"sas:{uuid.uuid4()}"
    doc = SlotDoc(
        id=slot_id, source="sas", use_case="agenda", practitioner_national_id=offer["national_id"],
        practitioner_name=offer["name"], offer_id=offer["id"], offer_kind="ps", start=start, end=end,
        date_range=DateRange(gte=start, lt=end), duration_min=int((end - start).total_seconds() // 60),
        types=["SNP"], modes=["AMB"], specialties=["SM54"], bookable=True, capacity=capacity, booked_count=0,
        place=SlotPlace(address=offer["address"]["text"], phone="+33556000000"),
        location=GeoPoint(**offer["location"]), departement="33", territory="SAS-33", name_folded=offer["name_folded"],
        published_by="account-effecteur",
    ).model_dump(mode="json")
    es.index(index=alias_name(settings.index_prefix, "slots"), id=slot_id, document=doc, refresh=True)
    return slot_id


@pytest.fixture(scope="package")
def regulator_headers(token_for):
    return token_for("regulator", territories=["SAS-33"], sub="reg-bordeaux-1", name="Pauline RICART",
                     national_id="3620100057/70326SR")


@pytest.fixture(scope="package")
def vendor_headers(token_for):
    return {v: token_for("vendor", sub=f"vendor-{v}", name=v) for v in VENDORS}


def sim_admin(simulator, method: str, path: str, **kwargs) -> httpx.Response:
    return httpx.request(method, f"http://127.0.0.1:{simulator.port}{path}", timeout=10, **kwargs)
