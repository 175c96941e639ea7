"""The slot-search certification bed: the vendor simulator on a free port (real HTTP), a roster built from
directory offers the way ``sas simulate vendors`` builds it, and the test kit's searches sent to it.

The kit (``lib/sas_test_kit/aggregation/setup_test.rb``) asks the operator for practitioners set up for
each scenario (one place, two places, two practitioners, CPTS members…); here they are offers written for
that purpose. The kit's window is now → end of the day after tomorrow (at most 72 h); this bed asks for
seven days so that every scenario has slots whatever the weekday the suite runs on (the simulator's
practitioners do not work every day).
"""

from __future__ import annotations

import ssl
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import cached_property
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest

from bench.common import free_port
from simulator.app import Simulator
from simulator.roster import rosters_from_offers
from simulator.server import SimulatorThread
from tests.conformance import profiles as p
from tests.integration.harvest.conftest import luhn_national_id, practitioner_offer, sos_offer

PARIS = ZoneInfo("Europe/Paris")
VENDOR = "certif"          # served in the simulator's certified style (canonical=True)

#: What the simulated solution declares it offers (the kit's options_slots inputs, README "Vendor simulator":
#: PUBLIC / PRO / SNP slots, CPTS slots, office, home visits and teleconsultations).
DECLARED_SLOT_TYPES_PS = {"PUBLIC", "PRO", "SNP"}
DECLARED_SLOT_TYPES_CPTS = {"PUBLIC", "PRO", "SNP", "CPTS"}
DECLARED_CONSULTATION_TYPES = {"AMB", "VR", "HH"}

CPTS_A = ("950047225", "CPTS AXE MAJEUR", "+33102030405")          # bare FINESS, as the directory holds it
CPTS_B = ("950046227", "CPTS VAL D OISE CENTRE", "+33139599280")
SOS_RENNES, SOS_LORIENT = "34173748400020", "92080466300010"         # bare SIRETs (directory form)


def _nid(n: int) -> str:
    return luhn_national_id(900_000 + n)


SINGLE = _nid(1)                 # one place, no CPTS
MULTI = _nid(2)                  # two places
PAIR = (_nid(3), _nid(4))        # two practitioners searched together
IN_CPTS = _nid(5)                # one place, member of CPTS A
TWO_CPTS = _nid(6)               # one place, member of CPTS A and CPTS B
TOWN = [_nid(100 + i) for i in range(15)]     # a rich set for the options checks, one page (< 1000 slots)


def _offer(national_id: str, i: int, *, cpts=None, line: str | None = None, family: str = "MARTIN") -> dict:
    offer = practitioner_offer(
        offer_id=f"conf-{national_id}-{i}", national_id=national_id, vendor=VENDOR,
        line=line or f"{i + 1} rue Montesquieu",
        postcode="47000", city="Agen", lat=44.2033 + i / 10000, lon=0.6163, departement="47", family=family,
        given="Claire", cpts=cpts[:2] if cpts else None)
    if cpts:
        offer["sas"]["beyond_phone"] = cpts[2]
    # The practice's structure id as the RPPS extraction gives it (a bare SIRET): the kit's IDNST checks
    # ask for a practitioner "qui travaille dans un lieu avec un identifiant de structure".
    offer["structure"]["siret"] = f"{44_317_374_800_000 + i:014d}"
    return offer


def certification_offers() -> list[dict]:
    offers = [_offer(SINGLE, 0, family="UNLIEU"),
              _offer(MULTI, 1, family="DEUXLIEUX"), _offer(MULTI, 2, line="30 rue Madame Delmas", family="DEUXLIEUX"),
              _offer(PAIR[0], 3, family="PREMIER"), _offer(PAIR[1], 4, family="SECOND"),
              _offer(IN_CPTS, 5, cpts=CPTS_A, family="MEMBRE"),
              _offer(TWO_CPTS, 6, cpts=CPTS_A, family="DEUXCPTS")]
    offers += [_offer(nid, 10 + i, cpts=CPTS_B if i % 3 == 0 else None, family=f"VILLE{i}")
               for i, nid in enumerate(TOWN)]
    offers += [sos_offer(offer_id="conf-sos-rennes-nord", siret=SOS_RENNES, association="SOS Médecins de Rennes",
                         name="Centre de consultation Rennes Nord", line="320 avenue Général Georges Patton",
                         postcode="35700", city="Rennes", lat=48.1325, lon=-1.6602, departement="35", vendor=VENDOR),
               sos_offer(offer_id="conf-sos-rennes-cleunay", siret=SOS_RENNES, association="SOS Médecins de Rennes",
                         name="Centre de consultation Rennes Cleunay", line="106 rue Eugène Pottier",
                         postcode="35000", city="Rennes", lat=48.1089, lon=-1.7090, departement="35", vendor=VENDOR),
               sos_offer(offer_id="conf-sos-lorient", siret=SOS_LORIENT,
                         association="SOS Médecins Lorient et agglomération",
                         name="Centre de consultation Lorient", line="12 impasse Royer Dubail", postcode="56100",
                         city="Lorient", lat=47.7483, lon=-3.3700, departement="56", vendor=VENDOR)]
    # Phones as the directory may write them (national form): the vendor writes +33… (FAQ erreur 2).
    for offer, phone in zip(offers[-3:], ["02 99 00 00 01", "0299000002", "+33297000003"], strict=True):
        offer["phones"] = [phone]
    return offers


@dataclass
class Answer:
    """One search sent to the simulator and what it answered."""

    url: str                      # the request URL as sent
    status: int
    content_type: str
    body: dict
    elapsed_s: float
    requested_ids: list[str]
    window_end: datetime
    sent_at: datetime             # the window's start: "now" when the search was sent

    @cached_property
    def resources(self) -> list[dict]:
        return [e["resource"] for e in self.body.get("entry") or [] if isinstance(e.get("resource"), dict)]

    def by_profile(self, url: str) -> list[dict]:
        """The kit's selection ``entry.where(resource.meta.profile = '<url>')`` (FHIRPath equality: the
        resource declares exactly that one profile)."""
        return [r for r in self.resources if p.declared_profiles(r) == [url]]

    def of_type(self, kind: str) -> list[dict]:
        return [r for r in self.resources if r.get("resourceType") == kind]

    def resolve(self, reference: str | None) -> dict | None:
        """The bundle resource a relative ``Type/id`` or absolute (``fullUrl``) reference names."""
        if not reference:
            return None
        for entry in self.body.get("entry") or []:
            resource = entry.get("resource") or {}
            if entry.get("fullUrl") == reference or f"{resource.get('resourceType')}/{resource.get('id')}" == reference:
                return resource
        return None

    @cached_property
    def query(self) -> dict[str, list[str]]:
        return {k: sorted(v) for k, v in parse_qs(urlsplit(self.url).query, keep_blank_values=True).items()}


def _instant(moment: datetime, *, paris: bool = False, naive: bool = False) -> str:
    moment = moment.astimezone(PARIS if paris else timezone.utc)
    if naive:
        moment = moment.replace(tzinfo=None)
    return moment.isoformat(timespec="milliseconds")


class Bed:
    """The simulator and the kit's requests (``setup_helper.rb``: ``build_slot_search_params``)."""

    def __init__(self, thread: SimulatorThread, *, base: str | None = None, client: httpx.Client | None = None) -> None:
        self.thread = thread
        self.base = base or f"http://127.0.0.1:{thread.port}/{VENDOR}/fhir"
        self.client = client or httpx.Client(timeout=30, headers={"Accept": "application/fhir+json"})
        self._cache: dict[tuple, Answer] = {}

    def get(self, path: str, params: list[tuple[str, str]], *, ids: list[str], start: datetime,
            end: datetime) -> Answer:
        began = time.perf_counter()
        response = self.client.get(f"{self.base}/{path}", params=params)
        elapsed = time.perf_counter() - began
        try:
            body = response.json()
        except ValueError:
            body = {}
        return Answer(url=str(response.request.url), status=response.status_code,
                      content_type=response.headers.get("content-type", ""), body=body, elapsed_s=elapsed,
                      requested_ids=ids, window_end=end, sent_at=start)

    def slots(self, ids: list[str], *, cpts: bool, days: float = 7.0, cached: bool = True,
              naive: bool = False) -> Answer:
        """INT_R01 (``cpts=False``: ig_launch_1) or INT_R04 (``cpts=True``: ig_launch_2) for ``ids``;
        ``naive``: the window written without offset, as the kit's ig_launch_2 setup and the guide's PS example
        request do (``start=ge2021-01-02T10:00:00``: local time)."""
        key = ("slots", tuple(ids), cpts, days, naive)
        if cached and key in self._cache:
            return self._cache[key]
        now = datetime.now(timezone.utc).replace(microsecond=0)
        end = now + timedelta(days=days)
        params = [("_include", "Slot:schedule"), ("_include:iterate", "Schedule:actor")]
        if cpts:
            params += [("_include", "Slot:service-type-reference"),
                       ("_include:iterate", "HealthcareService:organization")]
        params += [("schedule.actor:Practitioner.identifier", ",".join(f"{p.RPPS_SYSTEM}|{i}" for i in ids)),
                   ("start", "ge" + _instant(now, paris=cpts or naive, naive=naive)),
                   ("start", "le" + _instant(end, paris=cpts or naive, naive=naive)), ("status", "free")]
        answer = self.get("Slot", params, ids=ids, start=now, end=end)
        self._cache[key] = answer
        return answer

    def sos(self, sirets: list[str], *, days: float = 7.0) -> Answer:
        """The SOS Médecins Schedule search (specifications_techniques-sos-recherche_creneaux.md) for the
        associations' wire ids ``3`` + SIRET."""
        key = ("sos", tuple(sirets), days)
        if key in self._cache:
            return self._cache[key]
        now = datetime.now(timezone.utc).replace(microsecond=0)
        end = now + timedelta(days=days)
        params = [("_revinclude", "Slot:schedule"), ("_include", "Schedule:actor:Location"),
                  ("_include:iterate", "Location:organization"),
                  ("_has:Slot:schedule:start", "ge" + now.astimezone(PARIS).isoformat(timespec="seconds")),
                  ("_has:Slot:schedule:start", "le" + end.astimezone(PARIS).isoformat(timespec="seconds")),
                  ("_has:Slot:schedule:status", "free"),
                  ("actor:Location.organization.identifier", ",".join(f"{p.STRUCTURE_SYSTEM}|{s}" for s in sirets))]
        answer = self.get("Schedule", params, ids=sirets, start=now, end=end)
        self._cache[key] = answer
        return answer


@pytest.fixture(scope="session")
def bed():
    port = free_port()
    rosters = rosters_from_offers(certification_offers())
    # A practitioner taking part in two CPTS: the directory's one offer names one; the second membership
    # is the platform's own registration (roster data), as for a real member of two communities.
    rosters[VENDOR].practitioners[TWO_CPTS].cpts.append(CPTS_B)
    simulator = Simulator(rosters, public_url=f"http://127.0.0.1:{port}", canonical={VENDOR}, taken_share=0.0)
    thread = SimulatorThread(simulator, port=port).start()
    try:
        yield Bed(thread)
    finally:
        thread.stop()


@pytest.fixture(scope="session")
def tls_bed(tmp_path_factory):
    """The same vendor over HTTPS with mutual TLS only (the kit's ``mTLS = true`` input; guide
    ``securite.md``): a server certificate and a platform client certificate from one test CA, plain HTTP
    refused by the vendor (fault ``tls_required``)."""
    from simulator.server import ServerTls
    from tests.tls_files import vendor_tls_files

    folder = tmp_path_factory.mktemp("conformance-tls")
    paths = vendor_tls_files(folder)
    port, https_port = free_port(), free_port()
    rosters = rosters_from_offers(certification_offers())
    simulator = Simulator(rosters, public_url=f"https://127.0.0.1:{https_port}", canonical={VENDOR}, taken_share=0.0)
    thread = SimulatorThread(simulator, port=port, https_port=https_port,
                             tls=ServerTls(paths["server_cert"], paths["server_key"], paths["ca"])).start()
    httpx.put(f"http://127.0.0.1:{port}/_admin/vendors/{VENDOR}/faults", json={"tls_required": True}).raise_for_status()
    context = ssl.create_default_context(cafile=str(paths["ca"]))
    context.load_cert_chain(str(paths["client_cert"]), str(paths["client_key"]))
    client = httpx.Client(timeout=30, headers={"Accept": "application/fhir+json"}, verify=context)
    try:
        yield Bed(thread, base=f"https://127.0.0.1:{https_port}/{VENDOR}/fhir", client=client)
    finally:
        client.close()
        thread.stop()


#: The scenarios of the kit's groups: name → (ids, INT_R04?).
SCENARIOS = {
    "single_location": ([SINGLE], False),                  # single_practitioner_single_location, ig_launch_1
    "single_location_cpts": ([IN_CPTS], True),             # the same group under ig_launch_2
    "multi_lieux": ([MULTI], False),
    "search_multiple_ps": (list(PAIR), False),
    "two_cpts": ([TWO_CPTS], True),                        # single_practitioner_multiple_cpts
    "options_ps": (TOWN, False),
    "options_cpts": (TOWN, True),
}


@pytest.fixture(scope="session")
def scenario(bed):
    """``scenario("multi_lieux")`` → the simulator's answer to that group's setup search."""
    def answer(name: str) -> Answer:
        ids, cpts = SCENARIOS[name]
        return bed.slots(ids, cpts=cpts)
    return answer
