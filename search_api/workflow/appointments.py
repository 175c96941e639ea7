"""INT_R03: reading the ``Appointment`` a vendor reports (profile FrAppointmentSAS), and OperationOutcomes.

Validation follows the profile where it matters to the platform and is tolerant where the
specification's own examples are (``participant.actor.identifier`` without ``system`` / ``type``):

- **400** — the body is not JSON, not an ``Appointment``, or an element has the wrong JSON type;
- **422** — a rule of the profile or of the platform is broken (identifier, regulator, status, times,
  practitioner id).

Every problem found is reported in one OperationOutcome (one ``issue`` each, with its ``expression``).
No patient element is read: an Appointment may carry a Patient participant; it is ignored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

PROFILE = "http://sas.fr/fhir/StructureDefinition/FrAppointmentSAS"
#: Id of the SOS Médecins profile (``FrAppointmentSASSOS``): ``pending`` without a practitioner is valid there.
SOS_PROFILE_ID = "sas-sos-appointment"
SOS_PROFILE = f"https://interop.esante.gouv.fr/ig/fhir/sas/StructureDefinition/{SOS_PROFILE_ID}"
OPERATOR_EXTENSION = "http://interopsante.org/fhir/StructureDefinition/FrAppointmentOperator"
CATEGORY_EXTENSION_SUFFIX = "sas-categorie-orientation"
ID_TYPE_SYSTEM = "http://interopsante.org/fhir/CodeSystem/fr-v2-0203"
RPPS_SYSTEM = "urn:oid:1.2.250.1.71.4.2.1"
PLATFORM_SYSTEM = "urn:oid:1.2.250.1.213.3.6"

#: FHIR appointment status → orientation status (the values the SAS uses).
STATUS_MAP = {"booked": "booked", "fulfilled": "fulfilled", "noshow": "noshow", "cancelled": "cancelled",
              "pending": "pending"}
#: ``sas-categorie-orientation`` codes → orientation category.
CATEGORY_CODES = {"001": "PS", "002": "PDM", "003": "SOS", "604": "CPTS", "603": "MSP", "124": "CDS"}
CATEGORY_TO_CODE = {v: k for k, v in CATEGORY_CODES.items()}
PARTICIPANT_STATUSES = {"accepted", "needs-action"}
_NATIONAL_ID = re.compile(r"^(8\d{11}|0\d{9})$")


@dataclass
class Issue:
    severity: str
    code: str
    diagnostics: str
    expression: str | None = None


class FhirInvalid(Exception):
    """The resource is refused: ``status`` 400 or 422, with every issue found."""

    def __init__(self, status: int, issues: list[Issue]) -> None:
        super().__init__("; ".join(i.diagnostics for i in issues))
        self.status = status
        self.issues = issues


def operation_outcome(issues: list[Issue]) -> dict:
    """An OperationOutcome resource listing ``issues``."""
    out: list[dict] = []
    for issue in issues:
        item: dict[str, Any] = {"severity": issue.severity, "code": issue.code, "diagnostics": issue.diagnostics}
        if issue.expression:
            item["expression"] = [issue.expression]
        out.append(item)
    return {"resourceType": "OperationOutcome", "issue": out}


@dataclass(frozen=True)
class AppointmentReport:
    """What the platform keeps of a reported appointment (no patient element)."""

    system: str
    value: str
    status: str                         # orientation status
    start: datetime
    end: datetime | None
    created: datetime | None
    practitioner_national_id: str | None
    operator_system: str
    operator_value: str
    operator_type: str                  # IDNPS | INTRN
    category: str | None = None
    participant_status: str | None = None
    profiles: tuple[str, ...] = field(default_factory=tuple)
    #: ``participant.actor.display`` of the practitioner, and the TRE_R38 code of ``Appointment.specialty``,
    #: when the vendor gives them (the directory completes them otherwise).
    practitioner_display: str | None = None
    specialty: str | None = None

    @property
    def operator_national_id(self) -> str | None:
        return self.operator_value if self.operator_type == "IDNPS" else None

    @property
    def operator_account_id(self) -> str | None:
        return self.operator_value if self.operator_type == "INTRN" else None


@dataclass(frozen=True)
class IdentifierCondition:
    """The identifier named by a conditional update: ``system`` ``None`` when only a value was given."""

    system: str | None
    value: str

    def matches(self, system: str, value: str) -> bool:
        return self.value == value and (self.system is None or self.system == system)


def conditional_identifier(params: Iterable[tuple[str, str]]) -> IdentifierCondition | None:
    """The identifier parameter of ``PUT Appointment?identifier=…``, its name read in any case (the guide
    writes ``?Identifier=[ID]``); ``None`` without one (then the body's identifier is the condition).
    ``<system>|<value>`` or a bare ``<value>``; ``FhirInvalid(400)`` when empty or given twice differently."""
    values = {value.strip() for name, value in params if name.strip().lower() == "identifier"}
    if not values:
        return None
    if len(values) > 1:
        raise FhirInvalid(400, [Issue("error", "value", "the identifier parameter is given several times, differently",
                                      "Appointment.identifier")])
    raw = values.pop()
    system, _, ident = raw.rpartition("|") if "|" in raw else ("", "", raw)
    system, ident = system.strip(), ident.strip()
    if not ident:
        raise FhirInvalid(400, [Issue("error", "value", "identifier must be <system>|<value> or <value>, with a value",
                                      "Appointment.identifier")])
    # "|value" (FHIR: no system) is read like a bare value: the profile requires a system anyway.
    return IdentifierCondition(system=system or None, value=ident)


class _Checker:
    def __init__(self) -> None:
        self.structure: list[Issue] = []
        self.rules: list[Issue] = []

    def bad_type(self, where: str, expected: str) -> None:
        self.structure.append(Issue("error", "structure", f"{where} must be {expected}", where))

    def rule(self, where: str, text: str, code: str = "required") -> None:
        self.rules.append(Issue("error", code, text, where))

    def obj(self, value: Any, where: str) -> dict | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            self.bad_type(where, "an object")
            return None
        return value

    def lst(self, value: Any, where: str) -> list:
        if value is None:
            return []
        if not isinstance(value, list):
            self.bad_type(where, "an array")
            return []
        return value

    def text(self, value: Any, where: str) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            self.bad_type(where, "a string")
            return None
        return value.strip() or None

    def instant(self, value: Any, where: str, *, required: bool) -> datetime | None:
        raw = self.text(value, where)
        if raw is None:
            if required:
                self.rule(where, f"{where} is required")
            return None
        try:
            moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            self.structure.append(Issue("error", "value", f"{where} is not a FHIR dateTime: {raw[:40]!r}", where))
            return None
        if moment.tzinfo is None or "T" not in raw:
            self.rule(where, f"{where} must be a date and time with an offset (e.g. 2022-09-04T14:00:00+01:00)",
                      "value")
            return None
        return moment


def _first(items: list) -> Any:
    return items[0] if items else None


def parse_appointment(raw: bytes | str | Any) -> AppointmentReport:
    """Validate a reported Appointment and keep what the platform needs; ``FhirInvalid`` otherwise.

    Every part is checked, in the resource's order, before anything is refused, so that one answer lists
    all the problems."""
    body = _appointment_object(raw)
    check = _Checker()
    system, value = _identifier(check, body)
    status = _status(check, body)
    start = check.instant(body.get("start"), "Appointment.start", required=True)
    end = check.instant(body.get("end"), "Appointment.end", required=True)
    created = check.instant(body.get("created"), "Appointment.created", required=False)
    if start and end and end <= start:
        check.rule("Appointment.end", "Appointment.end must be after Appointment.start", "invariant")
    operator, category = _extensions(check, body)
    operator_system, operator_value, operator_type = _operator(check, operator)
    national_id, display, participant_status = _practitioner(check, body, status=status)
    profiles = tuple(p for p in (check.obj(body.get("meta"), "Appointment.meta") or {}).get("profile") or []
                     if isinstance(p, str))
    if category is None and any(p.rstrip("/").endswith("/" + SOS_PROFILE_ID) for p in profiles):
        category = "SOS"
    specialty = _specialty(check, body)
    if check.structure:
        raise FhirInvalid(400, check.structure + check.rules)
    if check.rules:
        raise FhirInvalid(422, check.rules)
    assert system and value and status and start and operator_system and operator_value and operator_type
    return AppointmentReport(
        system=system, value=value, status=status, start=start, end=end, created=created,
        practitioner_national_id=national_id, operator_system=operator_system, operator_value=operator_value,
        operator_type=operator_type, category=category, participant_status=participant_status, profiles=profiles,
        practitioner_display=display, specialty=specialty,
    )


def _appointment_object(raw: bytes | str | Any) -> dict:
    """The body as a JSON object of resourceType Appointment; a fatal ``FhirInvalid`` (400) otherwise."""
    if isinstance(raw, (bytes, str)):
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise FhirInvalid(400, [Issue("fatal", "structure", f"the body is not JSON: {exc}")]) from exc
    else:
        body = raw
    if not isinstance(body, dict):
        raise FhirInvalid(400, [Issue("fatal", "structure", "the body must be a FHIR resource (a JSON object)")])
    if body.get("resourceType") != "Appointment":
        raise FhirInvalid(400, [Issue("fatal", "structure",
                                      f"resourceType must be Appointment, got {str(body.get('resourceType'))[:40]!r}",
                                      "resourceType")])
    return body


def _identifier(check: _Checker, body: dict) -> tuple[str | None, str | None]:
    """The vendor's appointment id: identifier 1..1 with system and value."""
    identifiers = body.get("identifier")
    if isinstance(identifiers, dict):      # tolerated: a single identifier given as an object
        identifiers = [identifiers]
    identifiers = check.lst(identifiers, "Appointment.identifier")
    identifier = check.obj(_first(identifiers), "Appointment.identifier[0]") or {}
    system = check.text(identifier.get("system"), "Appointment.identifier.system")
    value = check.text(identifier.get("value"), "Appointment.identifier.value")
    if not identifiers:
        check.rule("Appointment.identifier", "Appointment.identifier is required (the vendor's appointment id)")
    elif len(identifiers) > 1:
        check.rule("Appointment.identifier", "FrAppointmentSAS allows exactly one identifier", "invariant")
    else:
        if not system:
            check.rule("Appointment.identifier.system", "Appointment.identifier.system is required (vendor OID or URL)")
        if not value:
            check.rule("Appointment.identifier.value", "Appointment.identifier.value is required")
    return system, value


def _status(check: _Checker, body: dict) -> str | None:
    """The platform's status for the FHIR one (``STATUS_MAP``)."""
    status_raw = check.text(body.get("status"), "Appointment.status")
    if status_raw is None:
        check.rule("Appointment.status", "Appointment.status is required")
        return None
    if status_raw not in STATUS_MAP:
        check.rule("Appointment.status", f"status {status_raw!r} is not used by the SAS "
                                         f"(expected one of {', '.join(sorted(STATUS_MAP))})", "code-invalid")
        return None
    return STATUS_MAP[status_raw]


def _extensions(check: _Checker, body: dict) -> tuple[dict, str | None]:
    """The regulator's identifier (appointmentOperator extension) and the orientation category."""
    operator: dict = {}
    category = None
    for position, extension in enumerate(check.lst(body.get("extension"), "Appointment.extension")):
        extension = check.obj(extension, f"Appointment.extension[{position}]") or {}
        url = extension.get("url")
        if url == OPERATOR_EXTENSION:
            reference = check.obj(extension.get("valueReference"), "Appointment.extension.valueReference") or {}
            operator = check.obj(reference.get("identifier"), "Appointment.extension.valueReference.identifier") or {}
        elif isinstance(url, str) and url.endswith(CATEGORY_EXTENSION_SUFFIX):
            category = _category(check, extension) or category
    return operator, category


def _category(check: _Checker, extension: dict) -> str | None:
    """The orientation category of one category extension; None (and a rule broken) when unknown."""
    concept = check.obj(extension.get("valueCodeableConcept"),
                        "Appointment.extension.valueCodeableConcept") or {}
    codings = check.lst(concept.get("coding"), "Appointment.extension.valueCodeableConcept.coding")
    codes = [c.get("code") for c in codings if isinstance(c, dict)]
    known = [CATEGORY_CODES[c] for c in codes if c in CATEGORY_CODES]
    if not known:
        check.rule("Appointment.extension.valueCodeableConcept",
                   f"unknown orientation category {codes!r} (expected 001, 002, 003, 604, 603 or 124)",
                   "code-invalid")
        return None
    return known[0]


def _operator(check: _Checker, operator: dict) -> tuple[str | None, str | None, str | None]:
    """The regulator identifier's system, value and type (IDNPS or INTRN, from the system when not given)."""
    operator_system = check.text(operator.get("system"), "appointmentOperator.identifier.system")
    operator_value = check.text(operator.get("value"), "appointmentOperator.identifier.value")
    operator_type = None
    id_type = check.obj(operator.get("type"), "appointmentOperator.identifier.type") or {}
    for coding in check.lst(id_type.get("coding"), "appointmentOperator.identifier.type.coding"):
        if isinstance(coding, dict) and coding.get("code") in ("IDNPS", "INTRN"):
            operator_type = coding["code"]
    if not operator:
        check.rule("Appointment.extension",
                   "the FrAppointmentOperator extension (the regulator who booked) is required")
        return operator_system, operator_value, operator_type
    if not operator_system or not operator_value:
        check.rule("appointmentOperator.identifier", "the regulator identifier needs a system and a value")
    if operator_type is None:
        # The type follows from the system when only that is given.
        operator_type = {RPPS_SYSTEM: "IDNPS", PLATFORM_SYSTEM: "INTRN"}.get(operator_system or "")
        if operator_type is None:
            check.rule("appointmentOperator.identifier.type",
                       "the regulator identifier type must be IDNPS (national id) or INTRN (platform id)")
    if operator_type == "IDNPS" and operator_system and operator_system != RPPS_SYSTEM:
        check.rule("appointmentOperator.identifier.system", f"an IDNPS identifier has system {RPPS_SYSTEM}",
                   "value")
    if operator_type == "INTRN" and operator_system and operator_system != PLATFORM_SYSTEM:
        check.rule("appointmentOperator.identifier.system", f"an INTRN identifier has system {PLATFORM_SYSTEM}",
                   "value")
    return operator_system, operator_value, operator_type


def _practitioner(check: _Checker, body: dict, *, status: str | None) -> tuple[str | None, str | None, str | None]:
    """The practitioner's national id, display name and participation status (no Patient element is ever
    read); the id may be missing only for a pending appointment."""
    national_id, display, participant_status = _participants(check, body)
    if participant_status is not None and participant_status not in PARTICIPANT_STATUSES:
        check.rule("Appointment.participant.status",
                   f"participant status {participant_status!r} must be accepted or needs-action", "code-invalid")
    if national_id is None and status not in (None, "pending"):
        check.rule("Appointment.participant.actor.identifier",
                   "the practitioner's national id is required (it may be missing only for a pending SOS appointment)")
    if national_id is not None and not _NATIONAL_ID.match(national_id):
        check.rule("Appointment.participant.actor.identifier.value",
                   f"{national_id[:20]!r} is not a national id (8 + RPPS, 12 digits, or 0 + ADELI, 10 digits)", "value")
    return national_id, display, participant_status


def _participants(check: _Checker, body: dict) -> tuple[str | None, str | None, str | None]:
    """The first practitioner participant's national id and display, and the first participation status."""
    national_id = None
    display = None
    participant_status = None
    participants = check.lst(body.get("participant"), "Appointment.participant")
    if not participants:
        check.rule("Appointment.participant", "Appointment.participant is required")
    for position, participant in enumerate(participants):
        participant = check.obj(participant, f"Appointment.participant[{position}]") or {}
        actor = check.obj(participant.get("actor"), "Appointment.participant.actor") or {}
        reference = actor.get("reference")
        if isinstance(reference, str) and reference.startswith(("Patient", "#")) and not actor.get("identifier"):
            continue
        pstatus = check.text(participant.get("status"), "Appointment.participant.status")
        ident = check.obj(actor.get("identifier"), "Appointment.participant.actor.identifier") or {}
        ident_system = check.text(ident.get("system"), "Appointment.participant.actor.identifier.system")
        ident_value = check.text(ident.get("value"), "Appointment.participant.actor.identifier.value")
        if ident_value and (ident_system in (None, RPPS_SYSTEM)):
            if national_id is None:
                display = check.text(actor.get("display"), "Appointment.participant.actor.display")
            national_id = national_id or ident_value
            participant_status = participant_status or pstatus
        elif pstatus and participant_status is None:
            participant_status = pstatus
    return national_id, display, participant_status


def _specialty(check: _Checker, body: dict) -> str | None:
    """The first TRE_R38 specialty code (a coding without a system is read as TRE_R38)."""
    specialty = None
    for concept in check.lst(body.get("specialty"), "Appointment.specialty"):
        concept = check.obj(concept, "Appointment.specialty") or {}
        for coding in check.lst(concept.get("coding"), "Appointment.specialty.coding"):
            if isinstance(coding, dict) and isinstance(coding.get("code"), str) and specialty is None and \
                    "R38" in str(coding.get("system") or "TRE_R38"):
                specialty = coding["code"].strip() or None
    return specialty
