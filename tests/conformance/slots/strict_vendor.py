"""A strict vendor: a real HTTP server that records every request the platform sends and refuses, like a
certified vendor, any slot search that breaks the guide's "Critères de recherche"
(``specifications_techniques-{ps,cpts,sos}-recherche_creneaux.md``) with ``400`` + OperationOutcome.
Accepted searches get an empty searchset (``total: 0``): the point is the request, not the answer.

``rule_violations(request)`` is the same judgement, reused by the tests to say exactly what was wrong.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote, urlsplit

from tests.conformance import profiles as p

MAX_IDS = 25   # schedule.actor:Practitioner.identifier / actor:Location.organization.identifier: 1..25
RPPS_TOKEN = re.compile(r"^" + re.escape(p.RPPS_SYSTEM) + r"\|(8[0-9]{11}|0[0-9A-Za-z]{9,11})$")
SIRET_TOKEN = re.compile(r"^" + re.escape(p.STRUCTURE_SYSTEM) + r"\|3[0-9]{14}$")
FHIR_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?$")


@dataclass
class Captured:
    method: str
    path: str
    raw_query: str
    headers: dict[str, str]
    pairs: list[tuple[str, str]] = field(default_factory=list)

    @property
    def resource(self) -> str:
        return self.path.rstrip("/").rsplit("/", 1)[-1]

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.pairs if k == name]


def _window(values: list[str], name: str) -> list[str]:
    problems = []
    lower = [v for v in values if v.startswith("ge")]
    upper = [v for v in values if v.startswith("le")]
    if len(lower) != 1 or len(upper) != 1 or len(values) != 2:
        problems.append(f"{name}: one ge… and one le… expected (1..1 each), got {values}")
        return problems
    moments = []
    for value in (lower[0], upper[0]):
        if not FHIR_DATE.match(value[2:]):
            problems.append(f"{name}: {value!r} is not a FHIR date/dateTime")
        else:
            moments.append(value[2:])
    if (len(moments) == 2 and all("T" in m and m[-6] in "+-" for m in moments)
            and datetime.fromisoformat(moments[0]) >= datetime.fromisoformat(moments[1])):
        problems.append(f"{name}: the window ends before it starts")
    return problems


def _ids(values: list[str], name: str, token: re.Pattern, form: str) -> list[str]:
    if len(values) != 1:
        return [f"{name}: 1 parameter expected, got {len(values)}"]
    tokens = [t for t in values[0].split(",")]
    problems = []
    if not 1 <= len(tokens) <= MAX_IDS:
        problems.append(f"{name}: {len(tokens)} ids, 1..{MAX_IDS} expected")
    bad = [t for t in tokens if not token.match(t)]
    if bad:
        problems.append(f"{name}: {bad[:3]} not in the form {form}")
    return problems


def rule_violations(request: Captured) -> list[str]:
    """What breaks the guide's search criteria in ``request`` (empty: conformant)."""
    problems: list[str] = []
    accept = request.headers.get("accept", "")
    if "application/fhir+json" not in accept and "application/json+fhir" not in accept:
        problems.append(f"Accept: {accept!r}, application/json+fhir (or application/fhir+json) expected")
    if request.method != "GET":
        problems.append(f"{request.method}: GET expected")
    if request.resource == "Slot":
        problems += _slot_search_violations(request)
    elif request.resource == "Schedule":
        problems += _schedule_search_violations(request)
    else:
        problems.append(f"unexpected resource {request.resource!r}")
    return problems


def _slot_search_violations(request: Captured) -> list[str]:
    """A Slot search (practitioners, CPTS): window, RPPS ids, free slots and the includes."""
    problems = _window(request.all("start"), "start")
    problems += _ids(request.all("schedule.actor:Practitioner.identifier"),
                     "schedule.actor:Practitioner.identifier", RPPS_TOKEN, f"{p.RPPS_SYSTEM}|8<RPPS>")
    if request.all("status") != ["free"]:
        problems.append(f"status: {request.all('status')}, ['free'] expected")
    includes, iterate = request.all("_include"), request.all("_include:iterate")
    if "Slot:schedule" not in includes:
        problems.append("_include=Slot:schedule missing")
    if "Schedule:actor" not in iterate:
        problems.append("_include:iterate=Schedule:actor missing")
    if ("Slot:service-type-reference" in includes) != ("HealthcareService:organization" in iterate):
        problems.append("INT_R04 needs both _include=Slot:service-type-reference and "
                        "_include:iterate=HealthcareService:organization")
    return problems


def _schedule_search_violations(request: Captured) -> list[str]:
    """A Schedule search (SOS associations): window, SIRET ids, free slots and the includes."""
    problems = _window(request.all("_has:Slot:schedule:start"), "_has:Slot:schedule:start")
    problems += _ids(request.all("actor:Location.organization.identifier"),
                     "actor:Location.organization.identifier", SIRET_TOKEN, f"{p.STRUCTURE_SYSTEM}|3<SIRET>")
    if request.all("_has:Slot:schedule:status") != ["free"]:
        problems.append(f"_has:Slot:schedule:status: {request.all('_has:Slot:schedule:status')}, ['free'] expected")
    if request.all("_revinclude") != ["Slot:schedule"]:
        problems.append(f"_revinclude: {request.all('_revinclude')}, ['Slot:schedule'] expected")
    if "Schedule:actor:Location" not in request.all("_include"):
        problems.append("_include=Schedule:actor:Location missing")
    if "Location:organization" not in request.all("_include:iterate"):
        problems.append("_include:iterate=Location:organization missing")
    return problems


class StrictVendor:
    """``with StrictVendor() as vendor: … vendor.base_url … vendor.requests``."""

    def __init__(self) -> None:
        self.requests: list[Captured] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:   # quiet
                pass

            def do_GET(self) -> None:  # http.server's method name
                parts = urlsplit(self.path)
                # parse_qsl decodes %7C and '+': the tokens are compared decoded, as a FHIR server does.
                captured = Captured(method="GET", path=unquote(parts.path), raw_query=parts.query,
                                    headers={k.lower(): v for k, v in self.headers.items()},
                                    pairs=parse_qsl(parts.query, keep_blank_values=True))
                owner.requests.append(captured)
                problems = rule_violations(captured)
                if problems:
                    body = {"resourceType": "OperationOutcome", "issue": [
                        {"severity": "error", "code": "invalid", "diagnostics": problem} for problem in problems]}
                    self._send(400, body)
                    return
                base = f"http://{self.headers.get('host')}{parts.path}"
                self._send(200, {"resourceType": "Bundle", "type": "searchset", "total": 0,
                                 "link": [{"relation": "self", "url": f"{base}?{parts.query}"}], "entry": []})

            def _send(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="strict-vendor", daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/fhir"

    def __enter__(self) -> StrictVendor:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
