"""Booking vendor slots: redirect and proxied modes, the 2-second re-check with the vendor, idempotency,
hiding at once, and orientations beyond displayed slots."""

from __future__ import annotations

import time
import uuid
from urllib.parse import parse_qs, urlsplit

from mappings.registry import alias_name
from tests.integration.workflow.conftest import sim_admin


def key() -> dict[str, str]:
    return {"Idempotency-Key": f"k-{uuid.uuid4()}"}


def slot_doc(es, settings, slot_id: str) -> dict | None:
    found = es.options(ignore_status=404).get(index=alias_name(settings.index_prefix, "slots"), id=slot_id)
    return found.body["_source"] if found.body.get("found") else None


def test_redirect_booking_hides_the_slot_and_is_idempotent(wf_api, es, wf_settings, free_slot, regulator_headers):
    slot = free_slot("medilib")
    headers = {**regulator_headers, **key()}
    answer = wf_api.post("/v1/bookings", json={"slot_id": slot["id"]}, headers=headers)
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["mode"] == "redirect" and body["status"] == "oriented" and body["warnings"] == []
    url = urlsplit(body["booking_url"])
    assert parse_qs(url.query)["origin"] == ["sas"]
    assert body["booking_url"].startswith(slot["booking_url"].split("?")[0])
    orientation = body["orientation"]
    assert orientation["slot_id"] == slot["id"] and orientation["territory"] == "SAS-33"
    assert orientation["effecteur"]["national_id"] == slot["practitioner_national_id"]
    assert orientation["regulator"] == {**orientation["regulator"], "id": "reg-bordeaux-1",
                                        "national_id": "3620100057/70326SR", "territory": "SAS-33"}
    assert orientation["source"] == "vendor" and orientation["booking_mode"] == "redirect"
    assert slot_doc(es, wf_settings, slot["id"])["hidden"] is True

    again = wf_api.post("/v1/bookings", json={"slot_id": slot["id"]}, headers=headers)
    assert again.status_code == 200 and again.json()["replayed"] is True
    assert again.json()["orientation"]["id"] == orientation["id"]
    count = es.count(index=alias_name(wf_settings.index_prefix, "orientations"),
                     query={"term": {"slot_id": slot["id"]}})["count"]
    assert count == 1

    # Another operator (another key) cannot take the hidden slot.
    other = wf_api.post("/v1/bookings", json={"slot_id": slot["id"]}, headers={**regulator_headers, **key()})
    assert other.status_code == 409, other.text

    # The same key for another slot is a client error, not a second booking.
    reuse = wf_api.post("/v1/bookings", json={"slot_id": free_slot("medilib")["id"]}, headers=headers)
    assert reuse.status_code == 422


def test_slot_gone_at_the_vendor_is_409_and_removed(wf_api, es, wf_settings, free_slot, simulator, regulator_headers):
    slot = free_slot("medilib")
    taken = sim_admin(simulator, "POST", "/_admin/vendors/medilib/take", json={"slot_ids": [slot["vendor_slot_id"]]})
    assert taken.json()["taken"] == [slot["vendor_slot_id"]]
    answer = wf_api.post("/v1/bookings", json={"slot_id": slot["id"]}, headers={**regulator_headers, **key()})
    assert answer.status_code == 409, answer.text
    assert "no longer free" in answer.json()["message"]
    assert slot_doc(es, wf_settings, slot["id"]) is None


def test_vendor_too_slow_redirect_goes_on_within_the_deadline(wf_api, es, wf_settings, free_slot, simulator,
                                                               regulator_headers):
    slot = free_slot("medilib")
    sim_admin(simulator, "PUT", "/_admin/vendors/medilib/faults", json={"latency_ms": 4000})
    try:
        started = time.perf_counter()
        answer = wf_api.post("/v1/bookings", json={"slot_id": slot["id"]}, headers={**regulator_headers, **key()})
        elapsed = time.perf_counter() - started
    finally:
        sim_admin(simulator, "PUT", "/_admin/vendors/medilib/faults", json={})
    assert answer.status_code == 201, answer.text
    assert elapsed < 3.5, f"the re-check deadline is 2 s, the booking took {elapsed:.2f}s"
    body = answer.json()
    assert body["mode"] == "redirect" and "vendor_unverified" in body["orientation"]["flags"]
    assert body["warnings"] and "did not confirm" in body["warnings"][0]


def test_proxied_booking_creates_the_appointment_at_the_vendor(wf_api, es, wf_settings, free_slot, simulator,
                                                                regulator_headers):
    slot = free_slot("agendax")
    answer = wf_api.post("/v1/bookings", json={"slot_id": slot["id"], "patient": {"family_name": "Martin"}},
                         headers={**regulator_headers, **key()})
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["mode"] == "appointment" and body["status"] == "booked" and body["booking_url"] is None
    orientation = body["orientation"]
    assert orientation["vendor_appointment_id"] and orientation["vendor_appointment_system"].startswith("https://agendax")
    assert slot_doc(es, wf_settings, slot["id"])["hidden"] is True
    # The simulator took the slot: a second booking attempt at the vendor would be refused.
    requests = sim_admin(simulator, "GET", "/_admin/vendors/agendax/requests").json()
    assert any(r["method"] == "POST" and r["path"].endswith("/Appointment") for r in requests)


def test_proxied_booking_without_vendor_confirmation_falls_back_to_redirect(wf_api, free_slot, simulator,
                                                                             regulator_headers):
    slot = free_slot("agendax")
    sim_admin(simulator, "PUT", "/_admin/vendors/agendax/faults", json={"down": True})
    try:
        answer = wf_api.post("/v1/bookings", json={"slot_id": slot["id"]}, headers={**regulator_headers, **key()})
    finally:
        sim_admin(simulator, "PUT", "/_admin/vendors/agendax/faults", json={})
    assert answer.status_code == 201, answer.text
    body = answer.json()
    # Never a proxied Appointment without the vendor's confirmation: redirect, flagged.
    assert body["mode"] == "redirect" and body["status"] == "oriented"
    assert "vendor_unverified" in body["orientation"]["flags"]
    requests = sim_admin(simulator, "GET", "/_admin/vendors/agendax/requests").json()
    assert not any(r["method"] == "POST" and slot["vendor_slot_id"] in r.get("query", "") for r in requests)


def test_booking_errors(wf_api, token_for, regulator_headers, free_slot):
    slot = free_slot("medilib")
    assert wf_api.post("/v1/bookings", json={"slot_id": "medilib:nope"}, headers={**regulator_headers, **key()}
                       ).status_code == 404
    assert wf_api.post("/v1/bookings", json={"slot_id": slot["id"]}, headers=regulator_headers).status_code == 422
    effecteur = token_for("effecteur", national_id="810000000001")
    assert wf_api.post("/v1/bookings", json={"slot_id": slot["id"]}, headers={**effecteur, **key()}).status_code == 403
    other_sas = token_for("regulator", territories=["SAS-92"])
    wrong = wf_api.post("/v1/bookings", json={"slot_id": slot["id"], "territory": "SAS-33"},
                        headers={**other_sas, **key()})
    assert wrong.status_code == 403
    redirect_only = wf_api.post("/v1/bookings", json={"slot_id": slot["id"], "mode": "appointment"},
                                headers={**regulator_headers, **key()})
    assert redirect_only.status_code == 422 and "redirect" in redirect_only.json()["message"]


def test_beyond_slots_orientation(wf_api, wf_offers, regulator_headers):
    beyond, plain = wf_offers["agenda"]
    headers = {**regulator_headers, **key()}
    answer = wf_api.post("/v1/bookings/beyond", json={"offer_id": beyond["id"]}, headers=headers)
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["phone"] == "+33556112233" and body["status"] == "oriented"
    assert body["orientation"]["source"] == "beyond_slots" and body["orientation"]["category"] == "PS"
    assert wf_api.post("/v1/bookings/beyond", json={"offer_id": beyond["id"]}, headers=headers).status_code == 200
    refused = wf_api.post("/v1/bookings/beyond", json={"offer_id": plain["id"]}, headers={**regulator_headers, **key()})
    assert refused.status_code == 422
