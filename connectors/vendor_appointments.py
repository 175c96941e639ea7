"""Proxied booking: the platform creates the ``Appointment`` at the vendor (vendors that allow it).

The body references the vendor's Slot, names the practitioner and the regulator (FrAppointmentOperator)
and, when the operator gave them, carries the patient's details in a contained ``Patient`` — in memory
only: this module never logs nor returns them, and the platform never stores them.

Outcomes: ``created`` (201/200, with the vendor's appointment identifier), ``gone`` (409 / 412 / 422
from the vendor: the slot is not free any more), or ``AppointmentError`` (anything else: nothing is
known to be booked). No retry: a POST that timed out may have booked; the caller answers "unknown".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import httpx
import orjson

from connectors.vendors.client import FHIR_ACCEPT, ssl_context
from connectors.vendors.config import VendorConfig
from connectors.vendors.errors import AppointmentError

RPPS_SYSTEM = "urn:oid:1.2.250.1.71.4.2.1"
PLATFORM_SYSTEM = "urn:oid:1.2.250.1.213.3.6"
ID_TYPE_SYSTEM = "http://interopsante.org/fhir/CodeSystem/fr-v2-0203"
OPERATOR_EXTENSION = "http://interopsante.org/fhir/StructureDefinition/FrAppointmentOperator"


@dataclass(frozen=True)
class PatientDetails:
    """What the operator may give for vendors that take it. Never stored, indexed or logged."""

    family_name: str | None = None
    given_name: str | None = None
    birth_date: str | None = None
    phone: str | None = None
    email: str | None = None

    def __repr__(self) -> str:  # never print the details, even in a traceback
        return "PatientDetails(<redacted>)"

    __str__ = __repr__


@dataclass(frozen=True)
class AppointmentOutcome:
    result: Literal["created", "gone"]
    system: str | None = None
    value: str | None = None
    location: str | None = None


def appointment_resource(*, vendor_slot_id: str, start: datetime, end: datetime, national_id: str | None,
                         operator_system: str, operator_value: str, operator_type: str,
                         patient: PatientDetails | None) -> dict[str, Any]:
    participants: list[dict[str, Any]] = []
    if national_id:
        participants.append({"actor": {"identifier": {
            "type": {"coding": [{"system": ID_TYPE_SYSTEM, "code": "IDNPS"}]},
            "system": RPPS_SYSTEM, "value": national_id}}, "status": "accepted"})
    resource: dict[str, Any] = {
        "resourceType": "Appointment",
        "status": "booked",
        "slot": [{"reference": f"Slot/{vendor_slot_id}"}],
        "start": start.isoformat(),
        "end": end.isoformat(),
        "extension": [{"url": OPERATOR_EXTENSION, "valueReference": {"identifier": {
            "type": {"coding": [{"system": ID_TYPE_SYSTEM, "code": operator_type}]},
            "system": operator_system, "value": operator_value}}}],
        "participant": participants,
    }
    if patient is not None and any((patient.family_name, patient.given_name, patient.birth_date, patient.phone)):
        contained: dict[str, Any] = {"resourceType": "Patient", "id": "patient"}
        if patient.family_name or patient.given_name:
            contained["name"] = [{k: v for k, v in (("family", patient.family_name),
                                                    ("given", [patient.given_name] if patient.given_name else None))
                                  if v}]
        if patient.birth_date:
            contained["birthDate"] = patient.birth_date
        telecom = [t for t in ({"system": "phone", "value": patient.phone} if patient.phone else None,
                               {"system": "email", "value": patient.email} if patient.email else None) if t]
        if telecom:
            contained["telecom"] = telecom
        resource["contained"] = [contained]
        participants.append({"actor": {"reference": "#patient"}, "status": "accepted"})
    return resource


def create_appointment(vendor: VendorConfig, resource: dict[str, Any], *, timeout_s: float,
                       transport: httpx.BaseTransport | None = None) -> AppointmentOutcome:
    """``POST [base]/Appointment`` once."""
    with httpx.Client(base_url=vendor.base_url + "/", timeout=httpx.Timeout(timeout_s), verify=ssl_context(vendor),
                      headers={"Accept": FHIR_ACCEPT, "Content-Type": "application/fhir+json"},
                      transport=transport) as client:
        try:
            response = client.post("Appointment", content=orjson.dumps(resource))
        except httpx.TimeoutException as exc:
            raise AppointmentError("timeout", f"{vendor.name}: no answer in {timeout_s}s") from exc
        except httpx.TransportError as exc:
            raise AppointmentError("connection_error", f"{vendor.name}: {type(exc).__name__}") from exc
    status = response.status_code
    if status in (409, 412, 422):
        return AppointmentOutcome(result="gone")
    if status not in (200, 201):
        raise AppointmentError(f"http_{status}", f"{vendor.name}: HTTP {status}", status=status)
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        body = {}
    identifiers = body.get("identifier") if isinstance(body, dict) else None
    first = identifiers[0] if isinstance(identifiers, list) and identifiers and isinstance(identifiers[0], dict) else {}
    system = first.get("system") or vendor.base_url
    value = first.get("value") or (body.get("id") if isinstance(body, dict) else None)
    return AppointmentOutcome(result="created", system=system, value=value, location=response.headers.get("location"))
