"""INT_R02 at the simulated vendors: regulator accounts (``Practitioner``) pushed by the platform.

- ``POST /{vendor}/fhir/Practitioner`` → 201 with ``Location``; 409 when the identifier exists;
- ``PUT /{vendor}/fhir/Practitioner?identifier=<system>|<value>`` → 200 (201 when unknown: idempotent);
- ``GET /_admin/vendors/{vendor}/practitioners`` lists what the vendor holds (tests).

Bodies are checked as the specification asks (FrPractitionerRegul): ``meta.source`` the platform,
one identifier (national id IDNPS or platform UUID INTRN), ``active``, ``name.family``.
"""

from __future__ import annotations

import threading
import uuid

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

PLATFORM = "urn:oid:1.2.250.1.213.3.6"
SYSTEMS = {"urn:oid:1.2.250.1.71.4.2.1": "IDNPS", PLATFORM: "INTRN"}
FHIR_JSON = "application/fhir+json"


def _outcome(status: int, code: str, text: str) -> Response:
    body = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": code, "diagnostics": text}]}
    return Response(orjson.dumps(body), status_code=status, media_type=FHIR_JSON)


def _check(body) -> tuple[str, str] | str:
    if not isinstance(body, dict) or body.get("resourceType") != "Practitioner":
        return "a Practitioner resource is expected"
    if (body.get("meta") or {}).get("source") != PLATFORM:
        return f"meta.source must be {PLATFORM}"
    identifiers = body.get("identifier") or []
    if len(identifiers) != 1 or not isinstance(identifiers[0], dict):
        return "exactly one identifier is expected"
    identifier = identifiers[0]
    system, value = identifier.get("system"), identifier.get("value")
    codes = [c.get("code") for c in (identifier.get("type") or {}).get("coding") or [] if isinstance(c, dict)]
    if system not in SYSTEMS or not value or SYSTEMS[system] not in codes:
        return "identifier must be a national id (IDNPS) or a platform id (INTRN) with its system"
    if not isinstance(body.get("active"), bool):
        return "active is required"
    names = body.get("name") or []
    if not names or not isinstance(names[0], dict) or not names[0].get("family"):
        return "name.family is required"
    return system, value


class AccountsBook:
    """Per-vendor regulator accounts of a ``Simulator``."""

    def __init__(self, simulator) -> None:
        self.simulator = simulator
        self.accounts: dict[str, dict[tuple[str, str], dict]] = {}
        self._lock = threading.Lock()

    @property
    def routes(self) -> list[Route]:
        return [
            Route("/{vendor}/fhir/Practitioner", self.create, methods=["POST"]),
            Route("/{vendor}/fhir/Practitioner", self.update, methods=["PUT"]),
            Route("/_admin/vendors/{vendor}/practitioners", self.admin_list, methods=["GET"]),
        ]

    def _store(self, vendor: str, key: tuple[str, str], body: dict, *, must_be_new: bool) -> tuple[int, dict] | None:
        with self._lock:
            book = self.accounts.setdefault(vendor, {})
            existing = book.get(key)
            if existing is not None and must_be_new:
                return None
            resource_id = existing["id"] if existing else str(uuid.uuid4())
            stored = {**body, "id": resource_id}
            book[key] = stored
            return (200 if existing else 201), stored

    def _created(self, vendor: str, status: int, stored: dict) -> Response:
        response = Response(orjson.dumps(stored), status_code=status, media_type=FHIR_JSON)
        response.headers["Location"] = f"{self.simulator.base_url(vendor)}/Practitioner/{stored['id']}"
        return response

    async def create(self, request: Request) -> Response:
        vendor, failure = await self.simulator._gate(request)
        if failure is not None:
            return failure
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return _outcome(400, "structure", "body is not JSON")
        checked = _check(body)
        if isinstance(checked, str):
            return _outcome(422, "business-rule", checked)
        result = self._store(vendor.name, checked, body, must_be_new=True)
        if result is None:
            return _outcome(409, "duplicate", "this account exists already: use the conditional update")
        return self._created(vendor.name, *result)

    async def update(self, request: Request) -> Response:
        vendor, failure = await self.simulator._gate(request)
        if failure is not None:
            return failure
        raw = request.query_params.get("identifier") or ""
        system, _, value = raw.partition("|")
        if not system or not value:
            return _outcome(400, "required", "?identifier=<system>|<value> is required")
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return _outcome(400, "structure", "body is not JSON")
        checked = _check(body)
        if isinstance(checked, str):
            return _outcome(422, "business-rule", checked)
        if checked != (system, value):
            return _outcome(400, "invalid", "the identifier of the URL and of the body differ")
        status, stored = self._store(vendor.name, checked, body, must_be_new=False)
        return self._created(vendor.name, status, stored)

    async def admin_list(self, request: Request) -> Response:
        vendor = request.path_params["vendor"]
        with self._lock:
            items = list(self.accounts.get(vendor, {}).values())
        return Response(orjson.dumps(items), media_type="application/json")
