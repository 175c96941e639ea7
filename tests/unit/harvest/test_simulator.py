"""The vendor simulator: realistic deterministic agendas, the specification's parameters enforced with
OperationOutcome errors, paging, taking slots, faults (in-process ASGI calls, no network)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import orjson
import pytest
from starlette.testclient import TestClient

from connectors.vendors.mapping import BundleMapper
from connectors.vendors.queries import practitioner_slot_search, sos_schedule_search
from simulator.app import Simulator
from simulator.roster import Roster, SimAssociation, SimPlace, SimPractitioner

IDS = [f"8100000{i:05d}" for i in range(30)]


def roster() -> Roster:
    result = Roster()
    for i, national_id in enumerate(IDS):
        places = [SimPlace(str(k), f"{k + 1} rue Pasteur", "47000", "Agen", "+33553000000") for k in range(1 + i % 2)]
        result.practitioners[national_id] = SimPractitioner(
            national_id, "MARTIN", "Claire", ["SM54"], places,
            [("470000011", "CPTS du Grand Agen", "+33553111111")] if i % 3 == 0 else [])
    result.associations["33417374840002"] = SimAssociation(
        "33417374840002", "SOS Médecins Agen", [SimPlace("0", "2 avenue Foch", "47000", "Agen", "+33553222222")])
    return result


@pytest.fixture
def sim():
    simulator = Simulator({"acme": roster()}, public_url="http://sim.test", canonical={"acme"})
    with TestClient(simulator.app) as client:
        yield simulator, client


def window():
    now = datetime.now(timezone.utc)
    return now, now + timedelta(days=7)


def search(client, params, path="/acme/fhir/Slot"):
    response = client.get(path, params=params)
    return response, (orjson.loads(response.content) if response.status_code != 204 else None)


def test_agendas_are_deterministic_and_realistic(sim):
    simulator, _ = sim
    vendor = simulator.vendors["acme"]
    first = [s.id for s in simulator.agenda(vendor, IDS[0]).slots]
    vendor.agendas.clear()
    assert [s.id for s in simulator.agenda(vendor, IDS[0]).slots] == first and first
    lengths, hours = set(), set()
    for national_id in IDS:
        for slot in simulator.agenda(vendor, national_id).slots:
            lengths.add(int(slot.end - slot.start) // 60)
            hours.add(datetime.fromtimestamp(slot.start, timezone.utc).astimezone().hour)
    assert lengths <= {10, 15, 20, 30} and len(lengths) >= 2
    assert not {0, 1, 2, 3, 4} & hours                    # nobody works at night


def test_agenda_memory_is_bounded_and_a_dropped_agenda_comes_back_identical(sim):
    from cachetools import LRUCache

    simulator, client = sim
    vendor = simulator.vendors["acme"]
    vendor.agendas = LRUCache(maxsize=3)
    start, end = window()
    params = practitioner_slot_search(national_ids=IDS[:25], start=start, end=end, with_cpts=True, page_size=5000)
    response, first = search(client, params)
    assert response.status_code == 200 and len(vendor.agendas) == 3     # bounded while serving 25
    taken = next(e["resource"]["id"] for e in first["entry"] if e["resource"]["resourceType"] == "Slot")
    assert simulator.take(vendor, taken)
    _, again = search(client, params)

    def ids(bundle: dict) -> list[str]:
        return sorted(e["resource"]["id"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Slot")

    # Rebuilt agendas are the same; the slot taken through the API stays taken.
    assert ids(again) == sorted(set(ids(first)) - {taken})


def test_int_r04_answers_map_cleanly_and_page(sim):
    _, client = sim
    start, end = window()
    params = practitioner_slot_search(national_ids=IDS[:25], start=start, end=end, with_cpts=True, page_size=200)
    response, bundle = search(client, params)
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/fhir+json")
    assert bundle["total"] > 200
    mapper = BundleMapper(vendor="acme")
    records, pages = [], 0
    while True:
        pages += 1
        result = mapper.map_bundle(bundle, search="cpts", requested=IDS[:25])
        assert not result.rejected
        records += result.records
        nxt = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
        if not nxt:
            break
        bundle = orjson.loads(client.get(nxt[0].replace("http://sim.test", "")).content)
    assert pages > 1 and len({r.id for r in records}) == len(records)
    assert {r.roster_key for r in records} <= set(IDS[:25])
    kinds = {t for r in records for t in r.types}
    assert {"PUBLIC", "CPTS"} <= kinds
    assert any(r.cpts and r.cpts[0]["name"] == "CPTS du Grand Agen" for r in records)
    assert all(r.booking_url is None or r.booking_url.startswith("http://sim.test/acme/rdv/") for r in records)
    # INT_R01 does not return slots offered only through a CPTS.
    plain = practitioner_slot_search(national_ids=IDS[:25], start=start, end=end)
    _, bundle = search(client, plain)
    assert not any("CPTS" in r.types for r in mapper.map_bundle(bundle, search="ps").records)


def test_sos_search(sim):
    _, client = sim
    start, end = window()
    response, bundle = search(client, sos_schedule_search(association_ids=["33417374840002"], start=start, end=end),
                              path="/acme/fhir/Schedule")
    assert response.status_code == 200
    result = BundleMapper(vendor="acme").map_bundle(bundle, search="sos")
    assert result.records and not result.rejected
    assert result.records[0].sos["association_name"] == "SOS Médecins Agen"
    assert result.records[0].sos["opening_hours"].startswith("lun-ven 20:00-24:00")


@pytest.mark.parametrize("change, expected", [
    (lambda p: [x for x in p if x[0] != "status"], "status=free"),
    (lambda p: [x for x in p if x != ("_include", "Slot:schedule")], "_include"),
    (lambda p: [x for x in p if x[0] != "start" or x[1].startswith("ge")], "start=le"),
    (lambda p: [x if x[0] != "schedule.actor:Practitioner.identifier" else (x[0], ",".join(IDS[:26])) for x in p],
     "1 to 25"),
    (lambda p: [x if x[0] != "start" else (x[0], "gedemain") for x in p], "invalid date"),
])
def test_bad_requests_get_an_operation_outcome(sim, change, expected):
    _, client = sim
    start, end = window()
    response, body = search(client, change(practitioner_slot_search(national_ids=IDS[:3], start=start, end=end)))
    assert response.status_code == 400
    assert body["resourceType"] == "OperationOutcome" and expected in body["issue"][0]["diagnostics"]


def test_taking_a_slot_and_proxied_booking(sim):
    simulator, client = sim
    start, end = window()
    params = practitioner_slot_search(national_ids=IDS[:1], start=start + timedelta(hours=2), end=end)
    records = BundleMapper(vendor="acme").map_bundle(search(client, params)[1], search="ps").records
    first, second = records[0].resource_id, records[1].resource_id
    booked = client.post("/acme/fhir/Appointment", content=orjson.dumps(
        {"resourceType": "Appointment", "status": "booked", "slot": [{"reference": f"Slot/{first}"}]}))
    assert booked.status_code == 201 and "/acme/fhir/Appointment/" in booked.headers["location"]
    again = client.post("/acme/fhir/Appointment", content=orjson.dumps(
        {"resourceType": "Appointment", "slot": [{"reference": f"Slot/{first}"}]}))
    assert again.status_code == 409 and orjson.loads(again.content)["resourceType"] == "OperationOutcome"
    assert client.post("/_admin/vendors/acme/take", json={"slot_ids": [second]}).json()["taken"] == [second]
    remaining = {r.resource_id
                 for r in BundleMapper(vendor="acme").map_bundle(search(client, params)[1], search="ps").records}
    assert first not in remaining and second not in remaining and len(remaining) == len(records) - 2
    page = client.get(f"/acme/rdv/{IDS[0]}", params={"slot": first, "origin": "sas"})
    assert page.status_code == 200 and "déjà pris" in page.text and "sas" in page.text


def test_faults(sim):
    simulator, client = sim
    start, end = window()
    params = practitioner_slot_search(national_ids=IDS[:2], start=start, end=end)
    client.put("/_admin/vendors/acme/faults", json={"down": True})
    response, body = search(client, params)
    assert response.status_code == 503 and body["resourceType"] == "OperationOutcome"
    client.put("/_admin/vendors/acme/faults", json={"rate_limit_rate": 1.0})
    response = client.get("/acme/fhir/Slot", params=params)
    assert response.status_code == 429 and response.headers["retry-after"] == "1"
    client.put("/_admin/vendors/acme/faults", json={"malformed_rate": 1.0})
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(client.get("/acme/fhir/Slot", params=params).content)
    client.put("/_admin/vendors/acme/faults", json={"tls_required": True})
    response, body = search(client, params)
    assert response.status_code == 403 and "mutual TLS" in body["issue"][0]["diagnostics"]
    assert client.put("/_admin/vendors/acme/faults", json={"colour": "red"}).status_code == 400
    client.put("/_admin/vendors/acme/faults", json={})
    assert client.get("/acme/fhir/Slot", params=params).status_code == 200
    log = client.get("/_admin/vendors/acme/requests").json()
    assert len(log) >= 5 and log[-1]["path"] == "/acme/fhir/Slot"
