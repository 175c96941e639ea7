"""Inputs that once made routes fail (dates near year 9999 overflowed Python's datetime: 500) and other
hostile values the schema-driven fuzzer does not think of: each answers a 4xx with a clear message (an
OperationOutcome on /fhir), never a 5xx. The fuzzer (``test_fuzz.py``) covers the generic cases."""

from __future__ import annotations

import uuid

import pytest

FAR = "9999-12-31T23:59:59%2B14:00"
ANCIENT = "0001-01-01T00:00:00%2B14:00"

GETS = [
    f"/v1/search?lat=48.8924&lon=2.2071&from={FAR}",
    f"/v1/search?lat=48.8924&lon=2.2071&to={FAR}",
    f"/v1/search?lat=48.8924&lon=2.2071&from={ANCIENT}&to={ANCIENT}",
    "/v1/search?lat=nan&lon=2.2071",
    "/v1/search?lat=48.8924&lon=inf",
    "/v1/search?lat=48.8924&lon=2.2071&radius_km=nan",
    "/v1/search?lat=1e308&lon=1e308",
    "/v1/search?q=%00",
    "/v1/search?lat=48.8924&lon=2.2071&page=99999999999999999999",
    f"/v1/search/beyond?lat=48.8924&lon=2.2071&from={FAR}",
    "/v1/search/beyond?lat=48.8924&lon=2.2071&radius_km=nan",
    "/v1/cpts/x?from=9999-12-31",
    "/v1/cpts/x?lat=nan&lon=1",
    f"/recherche?adresse=1%20rue%20de%20la%20Paix&code_postal=92000&ville=Nanterre&from={FAR}",
    "/recherche?code_postal=%00&ville=" + "x" * 3000,
    "/v1/dashboards/orientations?from=9999-12-31&to=9999-12-31",
    "/v1/dashboards/orientations?from=0001-01-01&to=0001-01-02",
    f"/v1/dashboards/declarations?from={ANCIENT}&to=0001-01-02",
    f"/v1/orientations?from={FAR}",
    f"/v1/orientations/export.csv?from={ANCIENT}",
    "/v1/orientations?territory=%00&effecteur=%22%7B",
    f"/v1/agenda/slots?offer_id=x&from={FAR}",
    "/v1/declarations?national_id=%00&offer_id=*",
    "/v1/admin/audit?actor=%00",
    # web pages (HTML): the same rules
    "/app/tableaux/orientations?du=9999-12-31&au=9999-12-31",
    "/app/tableaux/orientations?au=2025-13-45",
    "/app/tableaux/orientations.csv?du=9999-12-31&au=9999-12-31",
    "/app/recherche?q=%00&fenetre=zz",
    "/app/cpts/%00?q=%00",
]

BODIES = [
    ("POST", "/v1/declarations/reports",
     {"kind": "unavailable", "offer_id": "abc", "start": "9999-12-31T23:59:59+14:00"}),
    ("POST", "/v1/declarations/unavailability", {"periods": [{"start": "9999-12-31T23:59:59+14:00"}]}),
    ("POST", "/v1/declarations/unavailability", {"periods": [{"start": "0001-01-01T00:00:00-14:00"}]}),
    ("POST", "/v1/bookings/beyond", {"offer_id": "abc", "consultation_start": "9999-12-31T23:59:59+14:00"}),
    ("POST", "/v1/bookings", {"slot_id": "abc\u0000"}),
    ("POST", "/v1/agenda/slots", {"offer_id": "x", "items": [{"start": "9999-12-31T23:00:00+14:00",
                                                              "end": "9999-12-31T23:59:59+14:00"}]}),
    ("PUT", "/v1/accounts/matrix-bad-roles", {"family_name": "X", "territories": ["SAS-92"], "roles": ["superuser"]}),
    ("POST", "/v1/admin/api-keys", {"name": "x", "territories": ["SAS-92"], "slot_types": ["\u0000"]}),
]


@pytest.mark.parametrize("url", GETS)
def test_hostile_query_strings(api, everything_headers, url):
    response = api.get(url, headers=everything_headers)
    assert response.status_code < 500, (url, response.status_code, response.text[:300])
    if response.status_code >= 400 and response.headers["content-type"].startswith("application/json"):
        assert response.json()["message"], response.text


@pytest.mark.parametrize("form", [{"du": "9999-12-31", "au": "9999-12-31"}, {"du": "0001-01-01", "au": "0001-01-01"},
                                  {"du": "2030-02-30"}])
def test_practitioner_space_forms_answer_with_an_error_not_a_crash(api, everything_headers, form):
    response = api.post("/app/espace/indisponibilites", data=form, headers=everything_headers, follow_redirects=False)
    assert response.status_code == 303 and "erreur=" in response.headers["location"]


@pytest.mark.parametrize("method,url,body", BODIES, ids=[f"{m} {u} {i}" for i, (m, u, _) in enumerate(BODIES)])
def test_hostile_bodies(api, everything_headers, method, url, body):
    headers = {**everything_headers, "Idempotency-Key": f"bad-input-{uuid.uuid4()}"}
    response = api.request(method, url, json=body, headers=headers)
    assert 400 <= response.status_code < 500 or response.status_code in (200, 201), (
        response.status_code, response.text)
    if response.status_code >= 400:
        assert response.json()["message"], response.text


def test_far_dates_are_refused_with_a_message(api, everything_headers):
    response = api.get(f"/v1/search?lat=48.8924&lon=2.2071&from={FAR}", headers=everything_headers)
    assert response.status_code == 400 and "between years" in response.json()["message"]
    response = api.get("/v1/dashboards/orientations?from=9999-12-31&to=9999-12-31", headers=everything_headers)
    assert response.status_code == 400 and "between years" in response.json()["message"]
    response = api.post("/v1/declarations/reports", headers=everything_headers,
                        json={"kind": "unavailable", "offer_id": "abc", "start": "9999-12-31T23:59:59+14:00"})
    assert response.status_code == 422 and "between years" in response.json()["message"]


@pytest.mark.parametrize("body", [b"", b"{", b"[]", b"\xff\xfe", b'{"resourceType":"Patient"}', b"null",
                                  b'{"resourceType":"Appointment","start":"9999-12-31T23:59:59+14:00"}',
                                  b'{"resourceType":"Appointment","identifier":[{"system":"\\u0000","value":"x"}]}'])
def test_fhir_malformed_bodies(api, token_for, body):
    headers = {**token_for("vendor", name="medilib", sub="bad-input-vendor"), "Content-Type": "application/fhir+json"}
    response = api.post("/fhir/Appointment", content=body, headers=headers)
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["resourceType"] == "OperationOutcome"


def test_fhir_wrong_media_type_is_415_outcome(api, token_for):
    response = api.post("/fhir/Appointment", content=b"{}", headers={**token_for("vendor", name="medilib"),
                                                                     "Content-Type": "text/plain"})
    assert response.status_code == 415 and response.json()["resourceType"] == "OperationOutcome"
