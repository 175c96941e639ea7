"""Issue 15, point 3, on the real ``sas fhir serve`` listener: an Appointment body larger than
``SAS_MAX_FHIR_BODY_BYTES`` (64 KiB) is refused with a 413 OperationOutcome (``too-long``), declared or
streamed; the listener's answers carry the security headers (HSTS: it serves HTTPS only)."""

from __future__ import annotations

import json

import httpx

from search_api.middleware import SECURITY_HEADERS


def _post(listener, context, content, headers=None) -> httpx.Response:
    with httpx.Client(verify=context, timeout=20) as client:
        return client.post(f"{listener['url']}/fhir/Appointment", content=content,
                           headers={"Content-Type": "application/fhir+json", **(headers or {})})


def _assert_too_long(answer: httpx.Response) -> None:
    assert answer.status_code == 413, answer.text
    assert answer.headers["content-type"].startswith("application/fhir+json")
    outcome = answer.json()
    assert outcome["resourceType"] == "OperationOutcome" and outcome["issue"][0]["code"] == "too-long"
    for header, value in SECURITY_HEADERS.items():
        assert answer.headers[header] == value
    assert answer.headers["Strict-Transport-Security"].startswith("max-age=")


def test_a_declared_oversized_appointment_is_refused(listener, client_for):
    resource = {"resourceType": "Appointment", "status": "booked", "comment": "x" * (100 * 1024)}
    _assert_too_long(_post(listener, client_for("good"), json.dumps(resource).encode()))


def test_a_streamed_oversized_appointment_is_refused(listener, client_for):
    def chunks():
        for _ in range(64):
            yield b" " * 4096   # 256 KiB without Content-Length (chunked)

    _assert_too_long(_post(listener, client_for("good"), chunks()))


def test_a_small_body_still_reaches_the_route(listener, client_for):
    answer = _post(listener, client_for("good"), b'{"resourceType": "Appointment"}')
    assert answer.status_code in (400, 422), answer.text
    assert answer.json()["resourceType"] == "OperationOutcome"
