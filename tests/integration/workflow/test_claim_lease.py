"""Issue 14, point 3: a redirect claim is leased, it no longer hides a free slot forever.

Real parts: the workflow test bed's simulator over HTTP (a strict vendor), the real harvester, the shared
Elasticsearch node (``tests/integration``: the booking tests' bed lives there, slots harvested once per
package) and the real app. Two apps share the index: ``wf_api`` (default lease, 900 s) and one with a
1-second lease (``SAS_REDIRECT_CLAIM_LEASE_S``), so that the lease can run out within the test.

- a redirect booking hides the slot; cancelling its orientation shows it again at once;
- an abandoned redirect booking (no INT_R03 report) whose slot the vendor still lists free is shown
  again by the first harvest after the lease — not before (the default lease holds it);
- a slot the vendor reported booked (INT_R03) stays hidden although the vendor still lists it; a slot
  the vendor no longer lists is gone; one whose appointment the vendor reported cancelled comes back
  with the next harvest, whatever the lease.
"""

from __future__ import annotations

import copy
import json
import time
import uuid
from datetime import datetime

import pytest
from fastapi.testclient import TestClient

from mappings.registry import alias_name
from tests.integration.workflow.conftest import sim_admin
from tests.integration.workflow.test_fhir_r03 import FHIR, example

LEASE_S = 1


def key() -> dict[str, str]:
    return {"Idempotency-Key": f"lease-{uuid.uuid4()}"}


def slot_doc(es, settings, slot_id: str) -> dict | None:
    found = es.options(ignore_status=404).get(index=alias_name(settings.index_prefix, "slots"), id=slot_id)
    return found.body["_source"] if found.body.get("found") else None


@pytest.fixture(scope="module")
def short_lease(wf_settings, es, harvested):
    from search_api.app import create_app

    settings = wf_settings.model_copy(update={"redirect_claim_lease_s": LEASE_S})
    with TestClient(create_app(settings, es=es)) as client:
        yield client, settings


def book(client, slot: dict, headers: dict) -> dict:
    answer = client.post("/v1/bookings", json={"slot_id": slot["id"]}, headers={**headers, **key()})
    assert answer.status_code == 201, answer.text
    assert answer.json()["mode"] == "redirect"
    return answer.json()["orientation"]


def appointment(slot: dict) -> dict:
    """An INT_R03 ``booked`` Appointment of ``slot`` made by the test regulator at medilib."""
    report = copy.deepcopy(example("booked.json"))
    report["identifier"][0] = {"system": "https://medilib.example/rdv", "value": str(uuid.uuid4())}
    report["extension"][0]["valueReference"]["identifier"]["value"] = "3620100057/70326SR"
    report["start"], report["end"] = slot["start"], slot["end"]
    report["participant"][0]["actor"]["identifier"]["value"] = slot["practitioner_national_id"]
    return report


def harvest(es, settings) -> dict:
    from indexer.harvest import run_harvest

    (run,) = run_harvest(es=es, settings=settings, vendor="medilib", mode="incremental")
    assert run["status"] == "success", run
    return run


@pytest.mark.timeout(60)
def test_cancelling_a_redirect_booking_shows_the_slot_at_once(wf_api, es, wf_settings, free_slot, regulator_headers):
    slot = free_slot("medilib")
    orientation = book(wf_api, slot, regulator_headers)
    claimed = slot_doc(es, wf_settings, slot["id"])
    assert claimed["hidden"] is True

    cancelled = wf_api.post(f"/v1/orientations/{orientation['id']}/cancel", json={"reason": "patient_declined"},
                            headers=regulator_headers)
    assert cancelled.status_code == 200, cancelled.text
    released = slot_doc(es, wf_settings, slot["id"])
    assert released["hidden"] is False and released.get("claim_expires_at") is None
    # The claim was this orientation's, leased for the default 900 s.
    assert claimed.get("claimed_by") == orientation["id"]
    lease = datetime.fromisoformat(claimed["claim_expires_at"]) - datetime.fromisoformat(orientation["created_at"])
    assert abs(lease.total_seconds() - 900) < 5
    # Bookable again by another operator at once (no harvest in between).
    book(wf_api, slot, regulator_headers)


@pytest.mark.timeout(90)
def test_an_abandoned_redirect_claim_is_released_after_its_lease(wf_api, short_lease, es, wf_settings, free_slot,
                                                                 simulator, regulator_headers, vendor_headers):
    client, settings = short_lease
    held = free_slot("medilib")          # default lease: a harvest must not release it
    abandoned, reported, taken, dropped = (free_slot("medilib") for _ in range(4))
    book(wf_api, held, regulator_headers)
    book(client, abandoned, regulator_headers)
    orientation = book(client, reported, regulator_headers)
    book(client, taken, regulator_headers)

    # The vendor reports the appointment of ``reported`` (INT_R03) but, like any vendor whose listing lags,
    # still lists the slot free; ``taken`` is no longer listed.
    answer = client.post("/fhir/Appointment", content=json.dumps(appointment(reported)),
                         headers={**vendor_headers["medilib"], **FHIR})
    assert answer.status_code == 200, answer.text
    assert answer.headers["Location"].endswith(f"/Appointment/{orientation['id']}")
    # ``dropped`` (default lease): booked at the vendor, then cancelled there (INT_R03 ``cancelled``): its
    # lease ends at once, the next harvest shows it again since the vendor lists it free.
    dropped_orientation = book(wf_api, dropped, regulator_headers)
    body = appointment(dropped)
    booked = wf_api.post("/fhir/Appointment", content=json.dumps(body), headers={**vendor_headers["medilib"], **FHIR})
    assert booked.headers["Location"].endswith(f"/Appointment/{dropped_orientation['id']}")
    body["status"] = "cancelled"
    identifier = body["identifier"][0]
    cancelled = wf_api.put(f"/fhir/Appointment?identifier={identifier['system']}|{identifier['value']}",
                           content=json.dumps(body), headers={**vendor_headers["medilib"], **FHIR})
    assert cancelled.status_code == 200, cancelled.text
    gone = sim_admin(simulator, "POST", "/_admin/vendors/medilib/take", json={"slot_ids": [taken["vendor_slot_id"]]})
    assert gone.json()["taken"] == [taken["vendor_slot_id"]]

    for slot in (held, abandoned, reported, taken, dropped):
        assert slot_doc(es, wf_settings, slot["id"])["hidden"] is True
    time.sleep(LEASE_S + 0.5)
    run = harvest(es, settings)

    assert slot_doc(es, wf_settings, abandoned["id"])["hidden"] is False        # back to search
    assert slot_doc(es, wf_settings, abandoned["id"])["claim_expires_at"] is None
    assert slot_doc(es, wf_settings, held["id"])["hidden"] is True              # its lease runs on
    assert slot_doc(es, wf_settings, reported["id"])["hidden"] is True          # the vendor booked it
    assert slot_doc(es, wf_settings, reported["id"])["claim_expires_at"] is None
    assert slot_doc(es, wf_settings, taken["id"]) is None                       # no longer listed: gone
    assert slot_doc(es, wf_settings, dropped["id"])["hidden"] is False          # cancelled at the vendor
    assert {"reason": "flag:claim_released", "count": 2} in run["rejected_by_reason"]

    # Released for real: another operator books it.
    book(client, abandoned, regulator_headers)
