"""The simulator's HTTP side: the vendor end of the SAS specification for several named vendors.

Per vendor, under ``/{vendor}/fhir``:

* ``GET Slot?…`` — INT_R01 / INT_R04 slot searches (every required parameter checked: 400 +
  OperationOutcome; ``_count`` paging with ``link[next]``, CPTS slots only when the INT_R04 includes are
  asked for);
* ``GET Schedule?…`` — the SOS Médecins search (at most ``sos_max_ids`` SIRETs, 10 by default);
* ``POST Appointment`` — proxied booking (the slot is then taken);
* ``GET metadata`` — a minimal CapabilityStatement;

Strict like a certified vendor: an id that is not in the guide's wire form (``system|8…`` / ``system|0…``
for practitioners, ``urn:oid:1.2.250.1.71.4.2.2|3<SIRET>`` for associations) matches nothing — a bare SIRET
gets a 200 empty searchset, the failure a conformant vendor gives the platform — and answers carry the
guide's profiles (``BundleAgregateur`` / ``sas-cpts-bundle-aggregator`` / ``sas-sos-bundle-aggregator``…).

``GET /{vendor}/rdv/{who}/{place}`` is the practitioner's agenda at a place (``Slot.comment``, the redirect of
redirect mode; ``?slot=…`` on ``/{vendor}/rdv/{who}`` shows one slot). Errors are OperationOutcomes.
``/_admin/…`` (not part of the specification) lists vendors, reads the request log, takes slots and sets
faults (latency, error / 429 / timeout / malformed / bad-resource rates, down, TLS required).
"""

from __future__ import annotations

import asyncio
import html
import random
import re
import threading
import time
import uuid
from collections import deque
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from urllib.parse import urlencode

import orjson
from cachetools import LRUCache
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from connectors.vendors.queries import RPPS_SYSTEM, STRUCTURE_SYSTEM
from simulator.accounts import AccountsBook
from simulator.agenda import (
    CPTS_BUNDLE,
    CPTS_SLOT_PROFILE_BYTES,
    PARIS,
    PS_BUNDLE,
    PS_SLOT_PROFILE_BYTES,
    SOS_BUNDLE,
    AgendaBuilder,
    OwnerAgenda,
    SimSlot,
    VendorStyle,
)
from simulator.roster import Roster

FHIR_JSON = "application/fhir+json"
#: Ids per request the technical tables allow (INT_R01 / INT_R04).
MAX_IDS = 25
#: SIRETs per SOS search: the functional specification's "1 à 10 SIRET" (its technical table says 25).
SOS_MAX_IDS = 10
DEFAULT_COUNT = 1000
#: The guide's wire forms of the ids a search names: ``8`` + RPPS (11 digits) or ``0`` + ADELI (9
#: characters) under the RPPS system; ``3`` + SIRET (14 digits) under the structure system.
_PRACTITIONER_ID = re.compile(r"^(8[0-9]{11}|0[0-9A-Za-z]{9})$")
_SIRET_WIRE = re.compile(r"^3[0-9]{14}$")


def wire_ids(value: str, *, system: str, pattern: re.Pattern) -> tuple[int, list[str]]:
    """(tokens named, values in the guide's wire form) of a ``system|value,…`` token parameter.

    Strict like a certified vendor: a token without its system, of another system, or whose value is
    not in the guide's form (a bare SIRET) matches nothing — it is counted, never guessed at.
    """
    named, values = 0, []
    for token in value.split(","):
        token = token.strip()
        if not token:
            continue
        named += 1
        token_system, bar, token_value = token.partition("|")
        if bar and token_system == system and pattern.match(token_value):
            values.append(token_value)
    return named, values


@dataclass
class Faults:
    """Per-vendor fault injection; rates are probabilities per request."""

    latency_ms: float = 0.0
    error_rate: float = 0.0
    rate_limit_rate: float = 0.0
    timeout_rate: float = 0.0
    timeout_s: float = 30.0
    malformed_rate: float = 0.0
    bad_resource_rate: float = 0.0
    #: A vendor-side bug: ``200`` with an empty searchset (``total`` 0, no entry) although slots exist.
    empty_rate: float = 0.0
    #: ... and that empty answer still announces the real ``Bundle.total`` (the matches it did not send).
    empty_keeps_total: bool = False
    down: bool = False
    tls_required: bool = False


#: Agendas kept in memory per vendor (~350 KB each: a few thousand slots with their FHIR entries).
MAX_AGENDAS_PER_VENDOR = 500


@dataclass
class SimVendor:
    """One simulated vendor: its roster, style, taken slots, faults and request log."""

    name: str
    roster: Roster
    style: VendorStyle
    faults: Faults = field(default_factory=Faults)
    taken: dict[str, float] = field(default_factory=dict)          # slot id → when taken
    #: Agendas built so far, least recently used dropped beyond a bound: an agenda is a function of the
    #: roster and the day (slots taken through the API are kept in ``taken``), so a dropped one is built
    #: again identically. Unbounded, 100,000 practitioners' agendas took 17 GB.
    agendas: LRUCache | dict = field(default_factory=lambda: LRUCache(maxsize=MAX_AGENDAS_PER_VENDOR))
    requests: deque = field(default_factory=lambda: deque(maxlen=500))
    #: Fixed bundles served whatever the request (the specification's examples): search → bundles.
    fixtures: dict[str, list[dict]] = field(default_factory=dict)
    appointments: dict[str, dict] = field(default_factory=dict)
    rng: random.Random = field(default_factory=lambda: random.Random(7))


@dataclass
class _SearchAsked:
    """What a valid slot search asks: the agendas' keys (deduplicated, in order), the window, the page."""

    keys: list[str]
    window: tuple[float, float]
    page: int
    count: int


def outcome(status: int, code: str, text: str) -> Response:
    body = {"resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": code, "diagnostics": text}]}
    return Response(orjson.dumps(body), status_code=status, media_type=FHIR_JSON)


class Simulator:
    """State of every simulated vendor and the ASGI app serving them."""

    def __init__(self, vendors: dict[str, Roster], *, public_url: str, canonical: set[str] | None = None,
                 taken_share: float = 0.3, clock=time.time,
                 max_agendas_per_vendor: int | None = MAX_AGENDAS_PER_VENDOR, sos_max_ids: int = SOS_MAX_IDS) -> None:
        self.public_url = public_url.rstrip("/")
        #: SIRETs an SOS search may name (more: 400 too-costly).
        self.sos_max_ids = sos_max_ids
        self.clock = clock
        self.taken_share = taken_share
        self.vendors: dict[str, SimVendor] = {}
        self._lock = threading.Lock()
        for name, roster in vendors.items():
            style = VendorStyle.for_vendor(name, canonical=name in (canonical or set()))
            # None: every agenda kept (benchmarks build them all ahead).
            agendas: LRUCache | dict = ({} if max_agendas_per_vendor is None
                                         else LRUCache(maxsize=max_agendas_per_vendor))
            self.vendors[name] = SimVendor(name=name, roster=roster, style=style, agendas=agendas)
        self.app = Starlette(routes=[
            Route("/{vendor}/fhir/Slot", self.slot_search, methods=["GET"]),
            Route("/{vendor}/fhir/Schedule", self.sos_search, methods=["GET"]),
            Route("/{vendor}/fhir/Appointment", self.create_appointment, methods=["POST"]),
            Route("/{vendor}/fhir/metadata", self.metadata, methods=["GET"]),
            Route("/{vendor}/rdv/{who}", self.booking_page, methods=["GET"]),
            Route("/{vendor}/rdv/{who}/{place}", self.booking_page, methods=["GET"]),
            Route("/_admin/vendors", self.admin_vendors, methods=["GET"]),
            Route("/_admin/vendors/{vendor}/faults", self.admin_faults, methods=["GET", "PUT"]),
            Route("/_admin/vendors/{vendor}/take", self.admin_take, methods=["POST"]),
            Route("/_admin/vendors/{vendor}/requests", self.admin_requests, methods=["GET", "DELETE"]),
            Route("/_admin/healthz", lambda _: Response("ok"), methods=["GET"]),
            *AccountsBook(self).routes,   # INT_R02 (regulator accounts): simulator/accounts.py
        ])

    # -- helpers -------------------------------------------------------------------------------------

    def base_url(self, vendor: str) -> str:
        return f"{self.public_url}/{vendor}/fhir"

    def _builder(self, vendor: SimVendor) -> AgendaBuilder:
        return AgendaBuilder(vendor=vendor.name, base_url=self.base_url(vendor.name), public_url=self.public_url,
                             style=vendor.style, taken_share=self.taken_share)

    def agenda(self, vendor: SimVendor, key: str) -> OwnerAgenda | None:
        """The agenda of a practitioner / association, generated on first use and at each new day."""
        today = datetime.fromtimestamp(self.clock(), PARIS).date()
        agenda = vendor.agendas.get(key)
        if agenda is not None and agenda.first_day == today:
            return agenda
        if key in vendor.roster.practitioners:
            agenda = self._builder(vendor).practitioner(vendor.roster.practitioners[key], today=today)
        elif key in vendor.roster.associations:
            agenda = self._builder(vendor).association(vendor.roster.associations[key], today=today)
        else:
            return None
        vendor.agendas[key] = agenda
        return agenda

    def free_slots(self, vendor: SimVendor, agenda: OwnerAgenda, start: float, end: float, *, with_cpts: bool):
        now = self.clock()
        taken = vendor.taken
        for slot in agenda.slots:
            if slot.start < start:
                continue
            if slot.start > end:
                break
            if now >= slot.taken_at or slot.id in taken or (slot.cpts and not with_cpts):
                continue
            yield slot

    async def _gate(self, request: Request) -> SimVendor | Response:
        """Vendor lookup, request log and fault injection shared by every FHIR route: the vendor, or the
        answer that ends the request (unknown vendor, injected fault)."""
        vendor = self.vendors.get(request.path_params["vendor"])
        if vendor is None:
            return outcome(404, "not-found", f"no vendor {request.path_params['vendor']!r} here")
        vendor.requests.append({"at": time.time(), "method": request.method, "path": request.url.path,
                                "query": request.url.query, "scheme": request.url.scheme})
        faults = vendor.faults
        if faults.tls_required and request.url.scheme != "https":
            return outcome(403, "security", "mutual TLS required: connect over HTTPS with a client certificate")
        if faults.latency_ms:
            await asyncio.sleep(faults.latency_ms / 1000)
        if faults.down:
            return outcome(503, "transient", "service unavailable (simulated outage)")
        draw = vendor.rng.random()
        if draw < faults.timeout_rate:
            await asyncio.sleep(faults.timeout_s)
            return outcome(504, "timeout", "simulated timeout")
        draw -= faults.timeout_rate
        if draw < faults.error_rate:
            return outcome(500, "exception", "simulated internal error")
        draw -= faults.error_rate
        if draw < faults.rate_limit_rate:
            response = outcome(429, "throttled", "too many requests (simulated)")
            response.headers["Retry-After"] = "1"
            return response
        return vendor

    @staticmethod
    def _window(values: list[str], *, name: str = "start") -> tuple[float, float] | str:
        """The [ge, le] window of the ``start`` parameters: each exactly once (cardinality 1..1)."""
        lower = upper = None
        for value in values:
            prefix, instant = value[:2], value[2:]
            try:
                moment = datetime.fromisoformat(instant)
            except ValueError:
                return f"invalid date {value!r}"
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=PARIS)
            if prefix in ("ge", "gt"):
                if lower is not None:
                    return f"{name}=ge… given twice (1..1)"
                lower = moment.timestamp()
            elif prefix in ("le", "lt"):
                if upper is not None:
                    return f"{name}=le… given twice (1..1)"
                upper = moment.timestamp()
            else:
                return f"unsupported prefix in {value!r} (ge / le expected)"
        if lower is None or upper is None:
            return f"both {name}=ge… and {name}=le… are required"
        if upper < lower:
            return "the window ends before it starts"
        return lower, upper

    def _bundle(self, request: Request, vendor: SimVendor, matches: list, support_of, page: int, count: int,
                total: int, *, profile: str, cpts_slots: bool = False) -> Response:
        base = self.base_url(vendor.name)
        entries: list[bytes] = []
        seen: set[str] = set()
        bad = vendor.faults.bad_resource_rate
        for slot in matches:
            if bad and vendor.rng.random() < bad:
                # A broken resource among good ones (no schedule, impossible times): must be skipped alone.
                entries.append(orjson.dumps({"fullUrl": f"{base}/Slot/broken-{slot.id}", "resource": {
                    "resourceType": "Slot", "id": f"broken-{slot.id}", "status": "free",
                    "start": "not-a-date", "schedule": {"reference": "Schedule/nowhere"}},
                    "search": {"mode": "match"}}))
            # INT_R04: every Slot is a FrSlotAgregateurCPTS (what the test kit's CPTS launch counts).
            entries.append(slot.entry.replace(PS_SLOT_PROFILE_BYTES, CPTS_SLOT_PROFILE_BYTES, 1) if cpts_slots
                           else slot.entry)
            for key, support in support_of(slot):
                if key not in seen:
                    seen.add(key)
                    entries.extend(support)
        # ``link`` 1..1 in the CPTS / SOS bundle profiles: ``self``, the request as received (the test kit
        # compares its query with the request's). ``next`` is added only when the answer does not fit in
        # one page (_count): a second link then, which the profiles' 1..1 does not foresee, but paging is
        # how FHIR servers bound an answer and the harvester asks _count=1000.
        route = request.url.path.rsplit('/', 1)[-1]
        links = [{"relation": "self", "url": f"{base}/{route}?{request.url.query}"}]
        if (page + 1) * count < total:
            params = [(k, v) for k, v in request.query_params.multi_items() if k != "_page"]
            params.append(("_page", str(page + 1)))
            links.append({"relation": "next", "url": f"{base}/{route}?{urlencode(params)}"})
        head = orjson.dumps({"resourceType": "Bundle", "id": str(uuid.uuid4()), "type": "searchset", "total": total,
                             "meta": {"lastUpdated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                      "profile": [profile]},
                             "link": links})
        body = head[:-1] + b',"entry":[' + b",".join(entries) + b"]}"
        if vendor.faults.malformed_rate and vendor.rng.random() < vendor.faults.malformed_rate:
            body = body[: max(len(body) // 2, 10)]   # truncated transfer: not JSON any more
        return Response(body, media_type=FHIR_JSON)

    @staticmethod
    def _paging(request: Request) -> tuple[int, int] | str:
        try:
            count = int(request.query_params.get("_count", DEFAULT_COUNT))
            page = int(request.query_params.get("_page", 0))
        except ValueError:
            return "_count and _page must be integers"
        if count < 1 or page < 0:
            return "_count must be ≥ 1 and _page ≥ 0"
        return page, min(count, 5000)

    # -- FHIR routes -------------------------------------------------------------------------------

    async def slot_search(self, request: Request) -> Response:
        """INT_R01 / INT_R04. Every required parameter is checked (400 + OperationOutcome, as the guide's
        "Réponse de base — Echec" says: the request cannot be executed); ids not in the guide's form
        match nothing (200, empty searchset: a success with no match, as a certified vendor answers)."""
        vendor = await self._gate(request)
        if isinstance(vendor, Response):
            return vendor
        asked = self._slot_search_asked(request)
        if isinstance(asked, Response):
            return asked
        with_cpts = "Slot:service-type-reference" in request.query_params.getlist("_include")
        if vendor.fixtures:
            return self._fixture_bundle(vendor, ["ps", "cpts"] if with_cpts else ["ps"])
        matches, agendas = self._matching_slots(vendor, asked.keys, asked.window, with_cpts=with_cpts)
        page, count = asked.page, asked.count
        total = len(matches)
        chosen = matches[page * count:(page + 1) * count]
        if vendor.faults.empty_rate and vendor.rng.random() < vendor.faults.empty_rate:
            chosen = []
            total = total if vendor.faults.empty_keeps_total else 0

        def support_of(slot):
            agenda = agendas[slot.id]
            yield f"owner-{agenda.key}", agenda.owner
            yield slot.schedule_id, agenda.support[slot.schedule_id]
            for finess in slot.cpts:
                yield f"cpts-{finess}", agenda.cpts_support.get(finess, [])

        return self._bundle(request, vendor, chosen, support_of, page, count, total,
                            profile=CPTS_BUNDLE if with_cpts else PS_BUNDLE, cpts_slots=with_cpts)

    def _slot_search_asked(self, request: Request) -> _SearchAsked | Response:
        """The practitioner search's ids, window and page, or the 400 of its first missing or bad parameter."""
        params = request.query_params
        if params.getlist("status") != ["free"]:
            return outcome(400, "required", "status=free is required (once)")
        includes = params.getlist("_include")
        iterate = params.getlist("_include:iterate")
        if "Slot:schedule" not in includes or "Schedule:actor" not in iterate:
            return outcome(400, "required", "_include=Slot:schedule and _include:iterate=Schedule:actor are required")
        if "Slot:service-type-reference" in includes and "HealthcareService:organization" not in iterate:
            return outcome(400, "required", "INT_R04 needs _include:iterate=HealthcareService:organization")
        actors = params.getlist("schedule.actor:Practitioner.identifier")
        if len(actors) != 1 or not actors[0].strip():
            return outcome(400, "required", "schedule.actor:Practitioner.identifier is required (once)")
        named, ids = wire_ids(actors[0], system=RPPS_SYSTEM, pattern=_PRACTITIONER_ID)
        if not 1 <= named <= MAX_IDS:
            return outcome(400, "too-costly", f"1 to {MAX_IDS} practitioner identifiers per request, got {named}")
        return self._window_and_page(request, list(dict.fromkeys(ids)), params.getlist("start"), name="start")

    async def sos_search(self, request: Request) -> Response:
        """The SOS Médecins search. Association ids count only as ``urn:oid:1.2.250.1.71.4.2.2|3<SIRET>``
        (SIRET-invariant ``^3[0-9]{14}$``): a bare SIRET gets an empty searchset, not an error."""
        vendor = await self._gate(request)
        if isinstance(vendor, Response):
            return vendor
        asked = self._sos_search_asked(request)
        if isinstance(asked, Response):
            return asked
        if vendor.fixtures:
            return self._fixture_bundle(vendor, ["sos"])
        matches, agendas = self._matching_slots(vendor, asked.keys, asked.window, with_cpts=False)
        page, count = asked.page, asked.count
        chosen = matches[page * count:(page + 1) * count]

        def support_of(slot):
            agenda = agendas[slot.id]
            yield f"owner-{agenda.key}", agenda.owner
            yield slot.schedule_id, agenda.support[slot.schedule_id]

        return self._bundle(request, vendor, chosen, support_of, page, count, len(matches), profile=SOS_BUNDLE)

    def _sos_search_asked(self, request: Request) -> _SearchAsked | Response:
        """The SOS search's SIRETs, window and page, or the 400 of its first missing or bad parameter."""
        params = request.query_params
        if (params.getlist("_revinclude") != ["Slot:schedule"]
                or "Schedule:actor:Location" not in params.getlist("_include")):
            return outcome(400, "required",
                           "_revinclude=Slot:schedule and _include=Schedule:actor:Location are required")
        # The guide writes both ``Location:organization`` (its example) and ``Location:Organization``.
        if not any(v.lower() == "location:organization" for v in params.getlist("_include:iterate")):
            return outcome(400, "required", "_include:iterate=Location:organization is required")
        if params.getlist("_has:Slot:schedule:status") != ["free"]:
            return outcome(400, "required", "_has:Slot:schedule:status=free is required (once)")
        actors = params.getlist("actor:Location.organization.identifier")
        if len(actors) != 1 or not actors[0].strip():
            return outcome(400, "required", "actor:Location.organization.identifier is required (once)")
        named, wire = wire_ids(actors[0], system=STRUCTURE_SYSTEM, pattern=_SIRET_WIRE)
        if not 1 <= named <= self.sos_max_ids:
            return outcome(400, "too-costly",
                           f"1 to {self.sos_max_ids} association identifiers per request, got {named}")
        # Agendas are keyed by the directory's bare SIRET.
        sirets = list(dict.fromkeys(value[1:] for value in wire))
        return self._window_and_page(request, sirets, params.getlist("_has:Slot:schedule:start"),
                                     name="_has:Slot:schedule:start")

    def _window_and_page(self, request: Request, keys: list[str], starts: list[str], *,
                         name: str) -> _SearchAsked | Response:
        window = self._window(starts, name=name)
        if isinstance(window, str):
            return outcome(400, "invalid", window)
        paging = self._paging(request)
        if isinstance(paging, str):
            return outcome(400, "invalid", paging)
        page, count = paging
        return _SearchAsked(keys=keys, window=window, page=page, count=count)

    def _matching_slots(self, vendor: SimVendor, keys: list[str], window: tuple[float, float], *,
                        with_cpts: bool) -> tuple[list[SimSlot], dict[str, OwnerAgenda]]:
        """The free slots of the agendas of ``keys`` in ``window``, and the agenda of each (by slot id)."""
        matches: list[SimSlot] = []
        agendas: dict[str, OwnerAgenda] = {}
        with self._lock:
            for key in keys:
                agenda = self.agenda(vendor, key)
                if agenda is None:
                    continue
                for slot in self.free_slots(vendor, agenda, *window, with_cpts=with_cpts):
                    matches.append(slot)
                    agendas[slot.id] = agenda
        return matches, agendas

    @staticmethod
    def _fixture_bundle(vendor: SimVendor, searches: list[str]) -> Response:
        """The fixed bundles of ``searches`` merged into one searchset (entries deduplicated by fullUrl)."""
        entries, seen, total = [], set(), 0
        for search in searches:
            for bundle in vendor.fixtures.get(search, []):
                for entry in bundle.get("entry", []):
                    key = entry.get("fullUrl") or id(entry)
                    if key in seen:
                        continue
                    seen.add(key)
                    entries.append(entry)
                    if (entry.get("resource") or {}).get("resourceType") == "Slot":
                        total += 1
        body = {"resourceType": "Bundle", "type": "searchset", "total": total, "entry": entries}
        return Response(orjson.dumps(body), media_type=FHIR_JSON)

    def _find_slot(self, vendor: SimVendor, slot_id: str):
        owner = slot_id.split("-", 1)[0]
        key = owner[3:] if owner.startswith("sos") else owner
        agenda = self.agenda(vendor, key)
        if agenda is None:
            return None
        return next((slot for slot in agenda.slots if slot.id == slot_id), None)

    def take(self, vendor: SimVendor, slot_id: str) -> bool:
        """Mark a slot taken; ``False`` when it is unknown or not free any more."""
        with self._lock:
            slot = self._find_slot(vendor, slot_id)
            now = self.clock()
            if slot is None or slot_id in vendor.taken or now >= slot.taken_at or slot.start <= now:
                return False
            vendor.taken[slot_id] = time.time()
            return True

    async def create_appointment(self, request: Request) -> Response:
        vendor = await self._gate(request)
        if isinstance(vendor, Response):
            return vendor
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return outcome(400, "structure", "body is not JSON")
        if not isinstance(body, dict) or body.get("resourceType") != "Appointment":
            return outcome(400, "structure", "an Appointment resource is expected")
        slots = body.get("slot") or []
        reference = (slots[0] or {}).get("reference", "") if slots and isinstance(slots[0], dict) else ""
        slot_id = reference.rsplit("/", 1)[-1]
        if not slot_id:
            return outcome(422, "business-rule", "Appointment.slot must reference the Slot being booked")
        if not self.take(vendor, slot_id):
            return outcome(409, "conflict", f"slot {slot_id} is not free")
        appointment_id = str(uuid.uuid4())
        stored = {**body, "id": appointment_id, "status": body.get("status") or "booked",
                  "identifier": [{"system": f"https://{vendor.name}.example/rdv", "value": appointment_id}]}
        vendor.appointments[appointment_id] = stored
        response = Response(orjson.dumps(stored), status_code=201, media_type=FHIR_JSON)
        response.headers["Location"] = f"{self.base_url(vendor.name)}/Appointment/{appointment_id}"
        return response

    async def metadata(self, request: Request) -> Response:
        vendor = self.vendors.get(request.path_params["vendor"])
        if vendor is None:
            return outcome(404, "not-found", "unknown vendor")
        body = {"resourceType": "CapabilityStatement", "status": "active", "kind": "instance", "fhirVersion": "4.0.1",
                "format": [FHIR_JSON], "rest": [{"mode": "server", "resource": [
                    {"type": "Slot", "interaction": [{"code": "search-type"}]},
                    {"type": "Schedule", "interaction": [{"code": "search-type"}]},
                    {"type": "Appointment", "interaction": [{"code": "create"}]}]}]}
        return Response(orjson.dumps(body), media_type=FHIR_JSON)

    async def booking_page(self, request: Request) -> Response:
        vendor = self.vendors.get(request.path_params["vendor"])
        if vendor is None:
            return HTMLResponse("<h1>Agenda inconnu</h1>", status_code=404)
        slot_id = request.query_params.get("slot", "")
        who = html.escape(request.path_params["who"])
        if not slot_id and "place" in request.path_params:
            return self._agenda_page(request, vendor)
        slot = self._find_slot(vendor, slot_id) if slot_id else None
        if slot is None:
            return HTMLResponse(f"<h1>{html.escape(vendor.name)}</h1><p>Créneau introuvable pour {who}.</p>",
                                status_code=404)
        start = datetime.fromtimestamp(slot.start, PARIS).strftime("%d/%m/%Y %H:%M")
        free = slot.id not in vendor.taken and self.clock() < slot.taken_at
        origin = html.escape(request.query_params.get("origin", ""))
        return HTMLResponse(
            f"<!doctype html><html lang='fr'><meta charset='utf-8'>"
            f"<title>{html.escape(vendor.name)} – prise de rendez-vous</title>"
            f"<h1>Rendez-vous du {start}</h1><p>Praticien {who}, créneau {html.escape(slot.id)}: "
            f"{'disponible' if free else 'déjà pris'}.</p><p>Origine : {origin or 'directe'}. "
            "Identifiez-vous pour confirmer la réservation pour le patient.</p></html>")

    def _agenda_page(self, request: Request, vendor: SimVendor) -> Response:
        """A practitioner's agenda at one place (what ``Slot.comment`` points to): its next free slots."""
        who, place = request.path_params["who"], request.path_params["place"]
        with self._lock:
            agenda = self.agenda(vendor, who)
            now = self.clock()
            free = [s for s in self.free_slots(vendor, agenda, now, now + 48 * 3600, with_cpts=True)
                    if s.schedule_id == f"sc-{who}-{place}"] if agenda else []
        if agenda is None:
            return HTMLResponse(f"<h1>{html.escape(vendor.name)}</h1><p>Agenda introuvable.</p>", status_code=404)
        origin = html.escape(request.query_params.get("origin", ""))
        items = "".join(f"<li>{datetime.fromtimestamp(s.start, PARIS):%d/%m/%Y %H:%M} ({html.escape(s.id)})</li>"
                        for s in free[:20])
        return HTMLResponse(
            f"<!doctype html><html lang='fr'><meta charset='utf-8'><title>{html.escape(vendor.name)} – agenda</title>"
            f"<h1>Agenda du praticien {html.escape(who)}</h1><p>{len(free)} créneau(x) disponible(s) dans les 48 h.</p>"
            f"<ul>{items}</ul><p>Origine : {origin or 'directe'}. "
            "Identifiez-vous pour réserver un créneau pour le patient.</p></html>")

    # -- admin ---------------------------------------------------------------------------------------

    async def admin_vendors(self, request: Request) -> Response:
        body = [{"name": v.name, "base_url": self.base_url(v.name), "practitioners": len(v.roster.practitioners),
                 "associations": len(v.roster.associations), "style": asdict(v.style), "faults": asdict(v.faults),
                 "taken": len(v.taken)} for v in self.vendors.values()]
        return Response(orjson.dumps(body), media_type="application/json")

    async def admin_faults(self, request: Request) -> Response:
        vendor = self.vendors.get(request.path_params["vendor"])
        if vendor is None:
            return Response(orjson.dumps({"error": "unknown vendor"}), status_code=404, media_type="application/json")
        if request.method == "PUT":
            try:
                vendor.faults = Faults(**orjson.loads(await request.body() or b"{}"))
            except (TypeError, orjson.JSONDecodeError) as exc:
                return Response(orjson.dumps({"error": str(exc)}), status_code=400, media_type="application/json")
        return Response(orjson.dumps(asdict(vendor.faults)), media_type="application/json")

    async def admin_requests(self, request: Request) -> Response:
        vendor = self.vendors.get(request.path_params["vendor"])
        if vendor is None:
            return Response(orjson.dumps({"error": "unknown vendor"}), status_code=404, media_type="application/json")
        if request.method == "DELETE":
            vendor.requests.clear()
        return Response(orjson.dumps(list(vendor.requests)), media_type="application/json")

    async def admin_take(self, request: Request) -> Response:
        """Take slots as another patient would: ``{"slot_ids": [...]}`` or ``{"count": n, "within_h": 48,
        "seed": 1}`` (n free slots picked at random among the next ``within_h`` hours)."""
        vendor = self.vendors.get(request.path_params["vendor"])
        if vendor is None:
            return Response(orjson.dumps({"error": "unknown vendor"}), status_code=404, media_type="application/json")
        try:
            body = orjson.loads(await request.body() or b"{}")
        except orjson.JSONDecodeError:
            return Response(orjson.dumps({"error": "body is not JSON"}), status_code=400, media_type="application/json")
        taken: list[str] = []
        if body.get("slot_ids"):
            taken = [slot_id for slot_id in body["slot_ids"] if self.take(vendor, str(slot_id))]
        else:
            count = int(body.get("count", 1))
            now = self.clock()
            horizon = now + float(body.get("within_h", 48)) * 3600
            rng = random.Random(body.get("seed"))
            keys = list(vendor.roster.practitioners) + list(vendor.roster.associations)
            rng.shuffle(keys)
            for key in keys:
                if len(taken) >= count:
                    break
                with self._lock:
                    agenda = self.agenda(vendor, key)
                    candidates = ([s.id for s in self.free_slots(vendor, agenda, now + 60, horizon, with_cpts=True)]
                                  if agenda else [])
                if candidates:
                    slot_id = rng.choice(candidates)
                    if self.take(vendor, slot_id):
                        taken.append(slot_id)
        return Response(orjson.dumps({"taken": taken, "at": time.time()}), media_type="application/json")
