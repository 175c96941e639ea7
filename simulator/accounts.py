"""INT_R02 at the simulated vendors: regulator accounts (``Practitioner``) pushed by the platform.

The simulated vendor behaves as a *certified* one (it passes the ANS test kit's INT_R02 v1 checks,
ported in ``tests/conformance/regulator_accounts/``):

- ``POST /{vendor}/fhir/Practitioner`` → 201 with ``Location``; 409 when the identifier is already
  attributed (a second create of one account is refused: use the conditional update);
- ``PUT /{vendor}/fhir/Practitioner?identifier=<system>|<value>`` → 200 when the account is found, 201
  when it is not (idempotent: PUT-as-create). The body may carry another identifier than the URL: that
  is how the guide's FAQ changes an account's identifier (platform UUID → national id); the account found
  by the URL's identifier is then known by the body's identifier only. An identifier held by another
  *active* account is refused (409: one active account per identifier); one held by a deactivated account
  is re-attributed (the kit's "réattribution d'un IDNPS");
- ``DELETE`` → 405: the guide has no DELETE (removal is ``active = false``);
- ``GET /_admin/vendors/{vendor}/practitioners`` lists what the vendor holds, and
  ``GET|DELETE /_admin/vendors/{vendor}/practitioner-requests`` what it received (method, query, body,
  answer) — for tests.

Bodies are checked against FrPractitionerRegul (guide ``input/fsh/profiles/FrPractitionerRegul.fsh``)
and the management rules of ``specifications_techniques-tous-gestion_regulateur.md``; every violation is
listed in the ``OperationOutcome`` (``expression`` = the element) with 422, a body that is not a FHIR
Practitioner at all is a 400. A resource ``id`` in the body is ignored, as FHIR servers do on create
(the kit sends one).
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import TypeGuard

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

PLATFORM = "urn:oid:1.2.250.1.213.3.6"
RPPS = "urn:oid:1.2.250.1.71.4.2.1"
SYSTEMS = {RPPS: "IDNPS", PLATFORM: "INTRN"}
ID_TYPE_SYSTEM = "http://interopsante.org/fhir/CodeSystem/fr-v2-0203"
#: The profile's canonical URL (``sushi-config.yaml`` canonical + ``StructureDefinition/<id>``).
PROFILE = "https://interop.esante.gouv.fr/ig/fhir/sas/StructureDefinition/FrPractitionerRegul"
FHIR_JSON = "application/fhir+json"
#: Elements of a FHIR R4 Practitioner: anything else is not a Practitioner (a FHIR parser refuses it).
PRACTITIONER_ELEMENTS = frozenset({
    "resourceType", "id", "meta", "implicitRules", "language", "text", "contained", "extension",
    "modifierExtension", "identifier", "active", "name", "telecom", "address", "gender", "birthDate", "photo",
    "qualification", "communication"})
EMAIL = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")
UUID_FORM = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
#: A national id starts with its type digit (8 RPPS, 0 ADELI, 3 structure-based "FINESS/…"): no spaces,
#: and never a UUID (the FAQ tells both apart by their form).
NATIONAL_ID = re.compile(r"^[0-9][0-9A-Za-z/]{1,49}$")
LOG_SIZE = 500


def _outcome(status: int, issues: list[tuple[str, str, str]]) -> Response:
    """``issues``: (code, element, text)."""
    body = {"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": code, "diagnostics": text, **({"expression": [where]} if where else {})}
        for code, where, text in issues]}
    return Response(orjson.dumps(body), status_code=status, media_type=FHIR_JSON)


def _text(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and value.strip() != "" and value == value.strip()


_Rule = Callable[[str, str], None]


def check_practitioner(body) -> tuple[int, list[tuple[str, str, str]]] | tuple[str, str]:
    """The body's (system, value), or (HTTP status, issues) when a certified vendor refuses it."""
    if not isinstance(body, dict) or body.get("resourceType") != "Practitioner":
        return 400, [("structure", "Practitioner", "a Practitioner resource is expected")]
    unknown = sorted(set(body) - PRACTITIONER_ELEMENTS)
    if unknown:
        return 400, [("structure", f"Practitioner.{unknown[0]}", f"unknown element(s): {', '.join(unknown)}")]
    issues: list[tuple[str, str, str]] = []

    def rule(where: str, text: str) -> None:
        issues.append(("invariant" if "must" in text else "required", f"Practitioner.{where}", text))

    _check_meta(body, rule)
    key = _check_identifier(body, rule)
    if not isinstance(body.get("active"), bool):
        rule("active", "active is required (true: habilitated, false: removed)")
    _check_names(body, rule)
    _check_telecoms(body, rule)
    if issues:
        return 422, issues
    assert key is not None
    return key


def _check_meta(body: dict, rule: _Rule) -> None:
    meta = body.get("meta")
    meta = meta if isinstance(meta, dict) else {}
    if meta.get("source") != PLATFORM:
        rule("meta.source", f"meta.source must be {PLATFORM} (the SAS platform)")
    profiles = meta.get("profile")
    if profiles is not None and (not isinstance(profiles, list) or any(p != PROFILE for p in profiles)):
        rule("meta.profile", f"meta.profile must be the guide's canonical profile {PROFILE}")


def _check_identifier(body: dict, rule: _Rule) -> tuple[str, str] | None:
    """The (system, value) of the body's one identifier when it has one usable as a key."""
    identifiers = body.get("identifier")
    if not isinstance(identifiers, list) or not identifiers:
        rule("identifier", "identifier is required (1..): the national id (IDNPS) or the platform id (INTRN)")
        return None
    if len(identifiers) != 1 or not isinstance(identifiers[0], dict):
        rule("identifier", "exactly one identifier is expected")
        return None
    identifier = identifiers[0]
    system, value = identifier.get("system"), identifier.get("value")
    type_ = identifier.get("type")
    type_ = type_ if isinstance(type_, dict) else {}
    codings = [c for c in type_.get("coding") or [] if isinstance(c, dict)]
    if system not in SYSTEMS:
        rule("identifier.system", f"identifier.system must be {RPPS} (national id) or {PLATFORM} (platform id)")
    elif not any(c.get("system") == ID_TYPE_SYSTEM and c.get("code") == SYSTEMS[system] for c in codings):
        rule("identifier.type", f"identifier.type must be {ID_TYPE_SYSTEM}#{SYSTEMS[system]} for system {system}")
    _check_identifier_value(system, value, rule)
    if isinstance(system, str) and _text(value):
        return system, value
    return None


def _check_identifier_value(system: object, value: object, rule: _Rule) -> None:
    if not _text(value):
        rule("identifier.value", "identifier.value is required")
    elif system == RPPS and (not NATIONAL_ID.match(value) or UUID_FORM.match(value)):
        rule("identifier.value", f"{value[:40]!r} is not a national id (IDNPS)")
    elif system == PLATFORM and not UUID_FORM.match(value):
        # The FAQ: the platform's technical id is a UUID, and vendors may check it with a regex.
        rule("identifier.value", f"{value[:40]!r} is not a platform technical id (a UUID)")


def _check_names(body: dict, rule: _Rule) -> None:
    names = body.get("name")
    if not isinstance(names, list) or not names or not all(isinstance(n, dict) for n in names):
        rule("name", "name is required (family and given)")
        return
    for name in names:
        if not _text(name.get("family")):
            rule("name.family", "name.family is required and must not be empty")
        given = name.get("given")
        if not isinstance(given, list) or len(given) != 1 or not _text(given[0]):
            rule("name.given", "name.given is required (exactly one first name)")


def _check_telecoms(body: dict, rule: _Rule) -> None:
    telecoms = body.get("telecom")
    if not isinstance(telecoms, list) or not telecoms or not all(isinstance(t, dict) for t in telecoms):
        rule("telecom", "telecom is required: the regulator's e-mail")
        return
    for telecom in telecoms:
        if telecom.get("system") != "email":
            rule("telecom.system", "telecom.system must be email")
        value = telecom.get("value")
        if not isinstance(value, str) or not EMAIL.match(value):
            rule("telecom.value", f"telecom.value must be an e-mail address, not {str(value)[:60]!r}")


class AccountsBook:
    """Per-vendor regulator accounts of a ``Simulator``: resources by id, and which identifier names which."""

    def __init__(self, simulator) -> None:
        self.simulator = simulator
        self.resources: dict[str, dict[str, dict]] = {}                 # vendor → resource id → resource
        self.index: dict[str, dict[tuple[str, str], str]] = {}          # vendor → (system, value) → resource id
        self.received: dict[str, deque] = {}
        self._lock = threading.Lock()

    @property
    def routes(self) -> list[Route]:
        return [
            Route("/{vendor}/fhir/Practitioner", self.create, methods=["POST"]),
            Route("/{vendor}/fhir/Practitioner", self.update, methods=["PUT"]),
            Route("/{vendor}/fhir/Practitioner", self.refuse_delete, methods=["DELETE"]),
            Route("/_admin/vendors/{vendor}/practitioners", self.admin_list, methods=["GET"]),
            Route("/_admin/vendors/{vendor}/practitioner-requests", self.admin_received, methods=["GET", "DELETE"]),
        ]

    # -- state ------------------------------------------------------------------------------------------

    def _holder(self, vendor: str, key: tuple[str, str]) -> dict | None:
        resource_id = self.index.get(vendor, {}).get(key)
        return self.resources[vendor][resource_id] if resource_id else None

    def _write(self, vendor: str, body: dict, key: tuple[str, str], *, found: dict | None,
               old_key: tuple[str, str] | None) -> tuple[int, dict] | Response:
        """Store ``body`` under ``key`` (in place of ``found``, known as ``old_key``); under the lock."""
        resources = self.resources.setdefault(vendor, {})
        index = self.index.setdefault(vendor, {})
        holder = self._holder(vendor, key)
        # One active account per identifier; a deactivated holder gives its identifier up (re-attribution:
        # it stays, deactivated, known by no identifier).
        if holder is not None and (found is None or holder["id"] != found["id"]) and holder.get("active"):
            return _outcome(409, [("duplicate", "Practitioner.identifier",
                                   f"{key[0]}|{key[1]} is the identifier of another active account")])
        resource_id = found["id"] if found else str(uuid.uuid4())
        stored = {**{k: v for k, v in body.items() if k != "id"}, "id": resource_id,
                  "meta": {**(body.get("meta") or {}), "versionId": str(int((found or {}).get("meta", {})
                                                                               .get("versionId", "0")) + 1)}}
        resources[resource_id] = stored
        if old_key is not None and old_key != key and index.get(old_key) == resource_id:
            del index[old_key]     # known by its new identifier only (FAQ: identifier change)
        index[key] = resource_id
        return (200 if found else 201), stored

    def _log(self, vendor: str, request: Request, body, status: int) -> None:
        log = self.received.setdefault(vendor, deque(maxlen=LOG_SIZE))
        log.append({"at": time.time(), "method": request.method, "query": request.url.query,
                    "identifier": request.query_params.get("identifier"), "body": body, "status": status})

    def _answer(self, vendor: str, status: int, stored: dict) -> Response:
        response = Response(orjson.dumps(stored), status_code=status, media_type=FHIR_JSON)
        response.headers["Location"] = f"{self.simulator.base_url(vendor)}/Practitioner/{stored['id']}"
        return response

    # -- FHIR routes ------------------------------------------------------------------------------------

    async def _body(self, request: Request):
        try:
            return orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return None

    async def create(self, request: Request) -> Response:
        vendor = await self.simulator._gate(request)
        if isinstance(vendor, Response):
            return vendor
        body = await self._body(request)
        response = self._create(vendor.name, body)
        self._log(vendor.name, request, body, response.status_code)
        return response

    def _create(self, vendor: str, body) -> Response:
        if body is None:
            return _outcome(400, [("structure", "", "body is not JSON")])
        checked = check_practitioner(body)
        if isinstance(checked[0], int):
            return _outcome(*checked)
        with self._lock:
            if self._holder(vendor, checked) is not None:
                return _outcome(409, [("duplicate", "Practitioner.identifier",
                                       "this account exists already: use the conditional update (PUT)")])
            result = self._write(vendor, body, checked, found=None, old_key=None)
        return result if isinstance(result, Response) else self._answer(vendor, *result)

    async def update(self, request: Request) -> Response:
        vendor = await self.simulator._gate(request)
        if isinstance(vendor, Response):
            return vendor
        body = await self._body(request)
        response = self._update(vendor.name, request, body)
        self._log(vendor.name, request, body, response.status_code)
        return response

    def _update(self, vendor: str, request: Request, body) -> Response:
        unexpected = sorted(set(request.query_params) - {"identifier", "_format"})
        if unexpected or len(request.query_params.getlist("identifier")) != 1:
            return _outcome(400, [("invalid", "", "a conditional update takes one ?identifier=<system>|<value>"
                                   + (f" (unexpected: {', '.join(unexpected)})" if unexpected else ""))])
        system, bar, value = request.query_params["identifier"].partition("|")
        if not bar or system not in SYSTEMS or not value.strip():
            return _outcome(400, [("invalid", "", f"?identifier= must be {RPPS}|<national id> or {PLATFORM}|<uuid>")])
        if body is None:
            return _outcome(400, [("structure", "", "body is not JSON")])
        checked = check_practitioner(body)
        if isinstance(checked[0], int):
            return _outcome(*checked)
        target = (system, value)
        with self._lock:
            found = self._holder(vendor, target)
            result = self._write(vendor, body, checked, found=found, old_key=target if found else None)
        return result if isinstance(result, Response) else self._answer(vendor, *result)

    async def refuse_delete(self, request: Request) -> Response:
        vendor = await self.simulator._gate(request)
        if isinstance(vendor, Response):
            return vendor
        self._log(vendor.name, request, None, 405)
        response = _outcome(405, [("not-supported", "", "no DELETE in INT_R02: update the account with active=false")])
        response.headers["Allow"] = "POST, PUT"
        return response

    # -- admin ------------------------------------------------------------------------------------------

    async def admin_list(self, request: Request) -> Response:
        vendor = request.path_params["vendor"]
        with self._lock:
            items = list(self.resources.get(vendor, {}).values())
        return Response(orjson.dumps(items), media_type="application/json")

    async def admin_received(self, request: Request) -> Response:
        vendor = request.path_params["vendor"]
        with self._lock:
            log = self.received.setdefault(vendor, deque(maxlen=LOG_SIZE))
            if request.method == "DELETE":
                log.clear()
            items = list(log)
        return Response(orjson.dumps(items), media_type="application/json")
