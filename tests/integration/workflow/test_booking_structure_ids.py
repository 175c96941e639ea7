"""Issue 13, point 2: one representation of structure ids end to end, the guide's.

A certified vendor (the simulator over HTTP) sends a CPTS as ``1`` + FINESS and an SOS Médecins association
as ``3`` + SIRET; the real harvester indexes their slots, the real API books them, and the orientation
(``structure.id``) and the INT_L02 message that reaches a real RabbitMQ (``organizationId``) carry that
same wire form — once prefixed, never ``11950047225``. The directory (offers) keeps the bare ids.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import httpx
import pytest
import yaml

from bench.common import free_port
from connectors.vendors.queries import practitioner_slot_search, sos_schedule_search
from mappings.registry import alias_name
from simulator.app import Simulator
from simulator.roster import rosters_from_offers
from simulator.server import SimulatorThread
from tests import hub
from tests.integration.harvest.conftest import luhn_national_id, practitioner_offer, sos_offer

VENDOR = "structmed"
FINESS = "470000011"              # the CPTS, as the directory holds it
SIRET = "44173748400020"          # the SOS association, as the directory holds it


@pytest.fixture(scope="module")
def bed(es, indices, settings, tmp_path_factory) -> Iterator[dict]:
    """Directory offers (bare ids), the certified simulator, one full harvest by the real harvester."""
    from elasticsearch import helpers

    from indexer.harvest import run_harvest

    offers = [
        practitioner_offer(offer_id=f"{VENDOR}-ps", national_id=luhn_national_id(470470), vendor=VENDOR,
                           line="5 rue Montesquieu", postcode="47000", city="Agen", lat=44.2033, lon=0.6163,
                           departement="47", cpts=(FINESS, "CPTS du Grand Agen")),
        sos_offer(offer_id=f"{VENDOR}-sos", siret=SIRET, association="SOS Médecins Agen",
                  name="Centre de consultation Agen", line="2 avenue Foch", postcode="47000", city="Agen",
                  lat=44.2041, lon=0.6201, departement="47", vendor=VENDOR),
    ]
    port = free_port()
    thread = SimulatorThread(Simulator(rosters_from_offers(offers), public_url=f"http://127.0.0.1:{port}",
                                       taken_share=0.0), port=port).start()
    vendors_path = tmp_path_factory.mktemp("structure-ids") / "vendors.yaml"
    base = f"http://127.0.0.1:{port}/{VENDOR}/fhir"
    vendors_path.write_text(yaml.safe_dump({"vendors": [{"name": VENDOR, "base_url": base,
                                                    "use_cases": ["ps", "cpts", "sos"],
                                                    "timeout_s": 5, "max_attempts": 1, "rate_limit_per_s": 200}]}))
    wf_settings = settings.model_copy(update={"vendors_file": vendors_path})
    helpers.bulk(es, ({"_index": alias_name(settings.index_prefix, "offers"), "_id": o["id"], "_source": o}
                      for o in offers), refresh=True)
    (run,) = run_harvest(es=es, settings=wf_settings, vendor=VENDOR, mode="full")
    assert run["status"] == "success", run
    es.indices.refresh(index=alias_name(settings.index_prefix, "slots"))
    yield {"settings": wf_settings, "base": base, "offers": offers}
    thread.stop()


@pytest.fixture
def lrm(bed):
    """The test Hub (tests/hub.py): ``receive(count)`` waits for the messages addressed to the SAMU of
    Lot-et-Garonne."""
    with hub.published_messages() as published:
        yield hub.EXCHANGE, lambda count, timeout_s=10.0: [
            message for _, message in published(lambda m: hub.recipient(m) == "fr.health.samu470", count, timeout_s)]


def organization_ids(message: dict) -> list[str]:
    """Every ``organizationId`` of a message, wherever the envelope nests the appointment."""
    found: list[str] = []

    def walk(node) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "organizationId":
                    found.append(value)
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(message)
    return found


def bookable_slot(es, settings, *, cpts: bool) -> dict:
    now = datetime.now(timezone.utc)
    filters = [{"term": {"vendor": VENDOR}}, {"term": {"bookable": True}},
               {"term": {"use_case": "cpts" if cpts else "sos"}},
               {"range": {"start": {"gt": (now + timedelta(hours=1)).isoformat()}}}]
    if cpts:
        filters.append({"term": {"types": "CPTS"}})
    hits = es.search(index=alias_name(settings.index_prefix, "slots"), size=50, sort=[{"start": "asc"}],
                     query={"bool": {"filter": filters, "must_not": [{"term": {"hidden": True}}]}})["hits"]["hits"]
    usable = [h["_source"] for h in hits if h["_source"].get("booking_url") and (h["_source"]["cpts"] or not cpts)]
    assert usable, f"no bookable {'CPTS' if cpts else 'SOS'} slot harvested"
    return usable[0]


def test_structure_ids_travel_in_the_guides_form_from_vendor_to_orientation_and_lrm(bed, es, lrm, token_for):
    from fastapi.testclient import TestClient

    from search_api.app import create_app
    from search_api.workflow.wiring import close_workflow

    settings = bed["settings"]
    # 1. The vendor: the guide's form on the wire (FINESS- and SIRET-invariants).
    now = datetime.now(timezone.utc)
    cpts_bundle = httpx.get(f"{bed['base']}/Slot", params=practitioner_slot_search(
        national_ids=[bed["offers"][0]["national_id"]], start=now, end=now + timedelta(days=7), with_cpts=True)).json()
    sos_bundle = httpx.get(f"{bed['base']}/Schedule", params=sos_schedule_search(
        association_ids=[SIRET], start=now, end=now + timedelta(days=7))).json()
    wire = {e["resource"]["identifier"][0]["value"] for b in (cpts_bundle, sos_bundle) for e in b["entry"]
            if e["resource"]["resourceType"] == "Organization"}
    assert wire == {"1" + FINESS, "3" + SIRET}

    # 2. The index: matched to the directory's places, whose ids are bare.
    cpts_slot, sos_slot = bookable_slot(es, settings, cpts=True), bookable_slot(es, settings, cpts=False)
    assert cpts_slot["offer_id"] == f"{VENDOR}-ps" and [c["finess"] for c in cpts_slot["cpts"]] == [FINESS]
    assert sos_slot["offer_id"] == f"{VENDOR}-sos" and sos_slot["sos"]["association_siret"] == SIRET

    # 3. The orientation and 4. the INT_L02 message on the broker: the wire form, exactly once prefixed.
    exchange, receive = lrm
    settings = settings.model_copy(update=hub.platform_settings(lrm_exchange=exchange))
    app = create_app(settings, es=es)
    headers = token_for("regulator", territories=["SAS-47"], sub="reg-agen-1", name="Julie MARTY",
                        national_id="810000000001")
    try:
        with TestClient(app) as client:
            orientations = []
            for slot in (cpts_slot, sos_slot):
                answer = client.post("/v1/bookings", json={"slot_id": slot["id"]},
                                     headers={**headers, "Idempotency-Key": f"structure-{uuid.uuid4()}"})
                assert answer.status_code == 201, answer.text
                # The 2-second re-check found the slot at the vendor (searched again by its roster key).
                assert "vendor_unverified" not in answer.json()["orientation"]["flags"]
                orientations.append(answer.json()["orientation"])
            messages = receive(2)
    finally:
        if getattr(app.state, "workflow", None) is not None:
            close_workflow(app.state.workflow)
    assert [o["structure"]["id"] for o in orientations] == ["1" + FINESS, "3" + SIRET]
    assert [o["structure"]["name"] for o in orientations] == ["CPTS du Grand Agen", "SOS Médecins Agen"]
    stored = [es.get(index=alias_name(settings.index_prefix, "orientations"), id=o["id"])["_source"]["structure"]["id"]
              for o in orientations]
    assert stored == ["1" + FINESS, "3" + SIRET]
    assert len(messages) == 2
    assert sorted(i for m in messages for i in organization_ids(m)) == sorted(["1" + FINESS, "3" + SIRET])
