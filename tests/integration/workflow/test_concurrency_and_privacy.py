"""Own-agenda bookings under real concurrency (the app under uvicorn on loopback, 50 threads), and a
booking with a recognisable patient name leaving no trace in any index nor in any log."""

from __future__ import annotations

import json
import logging
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import uvicorn
from elasticsearch import helpers

from bench.common import free_port
from mappings.registry import alias_name
from tests.integration.workflow.conftest import ServerThread, agenda_slot

CONCURRENT = 50


@pytest.fixture(scope="module")
def served_app(wf_settings, es, harvested):
    from search_api.app import create_app

    port = free_port()
    config = uvicorn.Config(create_app(wf_settings, es=es), host="127.0.0.1", port=port, log_config=None,
                            log_level="warning", workers=1, limit_concurrency=200, backlog=256)
    with ServerThread(config):
        yield f"http://127.0.0.1:{port}"


def hammer(base_url: str, slot_id: str, headers: dict) -> list[int]:
    """``CONCURRENT`` bookings of one slot at once, each with its own Idempotency-Key."""
    def one(_: int) -> int:
        with httpx.Client(timeout=60) as client:
            response = client.post(f"{base_url}/v1/bookings", json={"slot_id": slot_id},
                                   headers={**headers, "Idempotency-Key": f"c-{uuid.uuid4()}"})
            return response.status_code

    with ThreadPoolExecutor(max_workers=CONCURRENT) as pool:
        return list(pool.map(one, range(CONCURRENT)))


@pytest.mark.timeout(120)
def test_fifty_concurrent_bookings_of_one_slot_exactly_one_wins(served_app, es, wf_settings, wf_offers,
                                                                regulator_headers):
    slot_id = agenda_slot(es, wf_settings, wf_offers["agenda"][1], capacity=None)
    statuses = hammer(served_app, slot_id, regulator_headers)
    assert statuses.count(201) == 1, statuses
    assert statuses.count(409) == CONCURRENT - 1, statuses
    slot = es.get(index=alias_name(wf_settings.index_prefix, "slots"), id=slot_id)["_source"]
    assert slot["booked_count"] == 1 and slot["hidden"] is True
    es.indices.refresh(index=alias_name(wf_settings.index_prefix, "orientations"))
    assert es.count(index=alias_name(wf_settings.index_prefix, "orientations"),
                    query={"term": {"slot_id": slot_id}})["count"] == 1


@pytest.mark.timeout(120)
def test_a_time_range_accepts_exactly_its_capacity(served_app, es, wf_settings, wf_offers, regulator_headers):
    slot_id = agenda_slot(es, wf_settings, wf_offers["agenda"][1], capacity=5, hours_ahead=8)
    statuses = hammer(served_app, slot_id, regulator_headers)
    assert statuses.count(201) == 5, statuses
    assert statuses.count(409) == CONCURRENT - 5, statuses
    slot = es.get(index=alias_name(wf_settings.index_prefix, "slots"), id=slot_id)["_source"]
    assert slot["booked_count"] == 5 and slot["hidden"] is True

    # Cancelling one orientation gives its place back, once.
    es.indices.refresh(index=alias_name(wf_settings.index_prefix, "orientations"))
    hits = es.search(index=alias_name(wf_settings.index_prefix, "orientations"),
                     query={"term": {"slot_id": slot_id}}, size=10)["hits"]["hits"]
    assert len(hits) == 5
    with httpx.Client(base_url=served_app, headers=regulator_headers, timeout=30) as client:
        first = client.post(f"/v1/orientations/{hits[0]['_id']}/cancel", json={"reason": "patient_declined"})
        assert first.status_code == 200 and first.json()["status"] == "cancelled"
        again = client.post(f"/v1/orientations/{hits[0]['_id']}/cancel")
        assert again.status_code == 200
    slot = es.get(index=alias_name(wf_settings.index_prefix, "slots"), id=slot_id)["_source"]
    assert slot["booked_count"] == 4 and slot["hidden"] is False


PATIENT = {"family_name": "Quatrebarbes", "given_name": "Zéphyrine", "birth_date": "1957-03-14",
           "phone": "+33 6 12 34 56 78", "email": "zephyrine.quatrebarbes@example.org"}


def test_patient_details_leave_no_trace(wf_api, es, wf_settings, free_slot, regulator_headers, simulator, caplog):
    caplog.set_level(logging.DEBUG)
    slot = free_slot("agendax")
    answer = wf_api.post("/v1/bookings", json={"slot_id": slot["id"], "patient": PATIENT},
                         headers={**regulator_headers, "Idempotency-Key": f"p-{uuid.uuid4()}"})
    assert answer.status_code == 201, answer.text
    assert "Quatrebarbes" not in answer.text
    # The vendor did receive them (proxied mode): they went through memory only.
    sim = simulator.simulator.vendors["agendax"]
    assert any("Quatrebarbes" in json.dumps(a) for a in sim.appointments.values())
    # A refused booking with the details must not echo them either.
    refused = wf_api.post("/v1/bookings",
                          json={"slot_id": slot["id"], "patient": {**PATIENT, "phone": "not a phone Quatrebarbes"}},
                          headers={**regulator_headers, "Idempotency-Key": f"p-{uuid.uuid4()}"})
    assert refused.status_code == 422 and "Quatrebarbes" not in refused.text
    # What the platform logged while handling them (the test's own queries below are not the platform's).
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert caplog.records, "the booking should have logged something (HTTP exchanges, Elasticsearch calls...)"

    pattern = f"{wf_settings.index_prefix}-*"
    es.indices.refresh(index=pattern)
    for needle in ("Quatrebarbes", "Zéphyrine", "zephyrine", "1957-03-14"):
        found = es.search(index=pattern, query={"query_string": {"query": f"*{needle.lower()}*", "fields": ["*"],
                                                                 "lenient": True, "analyze_wildcard": True}})
        assert found["hits"]["total"]["value"] == 0, needle
    # Every stored document, including fields not indexed for search.
    scanned = 0
    for hit in helpers.scan(es, index=pattern, query={"query": {"match_all": {}}}):
        scanned += 1
        text = json.dumps(hit["_source"], ensure_ascii=False).lower()
        assert "quatrebarbes" not in text and "zéphyrine" not in text and "12 34 56 78" not in text, hit["_id"]
    assert scanned > 0
    for needle in ("Quatrebarbes", "Zéphyrine", "1957-03-14", "12 34 56 78"):
        assert needle not in logged
