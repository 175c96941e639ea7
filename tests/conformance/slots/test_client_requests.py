"""Our side of the slot searches: what the platform's harvester (``indexer.harvest`` → ``connectors.vendors``)
puts on the wire, captured by a strict vendor (``strict_vendor.py``: a real HTTP server that refuses what a
certified vendor refuses), checked against the guide's search criteria — INT_R01, INT_R04 with the CPTS
``_include``s, the SOS Médecins Schedule search with ``urn:oid:1.2.250.1.71.4.2.2|3<SIRET>``, at most 25 ids
per request. The offers come from the directory as it is loaded (bare FINESS / SIRET)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qsl, urlsplit

import pytest

from connectors.vendors.config import VendorConfig
from indexer.harvest import Harvester
from indexer.lifecycle import drop_prefix, setup_indices
from tests.conformance import profiles as p
from tests.conformance.slots.strict_vendor import Captured, StrictVendor, rule_violations
from tests.integration.harvest.conftest import luhn_national_id, practitioner_offer, sos_offer, write_offers

PRACTITIONERS = [luhn_national_id(950_000 + i) for i in range(30)]       # 30 → two requests of ≤ 25
# bare (directory)
SIRETS = ["34173748400020", "92080466300010", *(f"{50_000_000_000_000 + i:014d}" for i in range(10))]


def _harvest(es, settings, *, name: str, use_cases: list[str]) -> tuple[list[Captured], dict]:
    offers = [practitioner_offer(offer_id=f"{name}-{i}", national_id=nid, vendor=name, line=f"{i + 1} rue Montesquieu",
                                 postcode="47000", city="Agen", lat=44.2033 + i / 10000, lon=0.6163, departement="47",
                                 cpts=("950047225", "CPTS AXE MAJEUR") if i % 3 == 0 else None)
              for i, nid in enumerate(PRACTITIONERS)]
    offers += [sos_offer(offer_id=f"{name}-sos-{i}", siret=siret, association=f"SOS Médecins {i}", name=f"Centre {i}",
                         line="1 place de la Gare", postcode="35000", city="Rennes", lat=48.1, lon=-1.67,
                         departement="35", vendor=name) for i, siret in enumerate(SIRETS)]
    write_offers(es, settings, offers)
    with StrictVendor() as vendor:
        config = VendorConfig(name=name, base_url=vendor.base_url, use_cases=use_cases, max_attempts=1,
                              backoff_initial_s=0.01, rate_limit_per_s=None)
        now = datetime.now(timezone.utc).replace(microsecond=0)
        run = Harvester(es=es, settings=settings, vendors=[config]).run(name, mode="full", start=now,
                                                                        end=now + timedelta(days=2), now=now)
        return list(vendor.requests), run


@pytest.fixture(scope="module")
def client_settings(es, settings, test_prefix):
    """Indices of their own (under the session's prefix): these offers in Agen and Rennes must not show up in
    other suites' searches."""
    prefix = f"{test_prefix}-conf{uuid.uuid4().hex[:4]}"
    setup_indices(es, prefix=prefix)
    yield settings.model_copy(update={"index_prefix": prefix})
    drop_prefix(es, prefix=prefix)


@pytest.fixture(scope="module")
def ps_requests(es, client_settings):
    return _harvest(es, client_settings, name="conf-client-ps", use_cases=["ps"])


@pytest.fixture(scope="module")
def cpts_sos_requests(es, client_settings):
    return _harvest(es, client_settings, name="conf-client-cpts", use_cases=["cpts", "sos"])


def _of(requests: list[Captured], resource: str) -> list[Captured]:
    return [r for r in requests if r.resource == resource]


def test_client_int_r01_request(ps_requests):
    """INT_R01 critères (specifications_techniques-ps-recherche_creneaux.md): start=ge…/le… once each,
    schedule.actor:Practitioner.identifier=urn:oid:1.2.250.1.71.4.2.1|8…, status=free, _include=Slot:schedule,
    _include:iterate=Schedule:actor, Accept FHIR JSON; no CPTS includes for a PS-only vendor."""
    requests, run = ps_requests
    slots = _of(requests, "Slot")
    assert slots, f"no Slot search sent ({run.get('errors')})"
    for request in slots:
        assert rule_violations(request) == [], request.raw_query
        assert "Slot:service-type-reference" not in request.all("_include")
    assert run["status"] == "success", run.get("errors")


def test_client_int_r04_request_includes(cpts_sos_requests):
    """INT_R04 (specifications_techniques-cpts-recherche_creneaux.md): the INT_R01 criteria plus
    _include=Slot:service-type-reference and _include:iterate=HealthcareService:organization."""
    requests, run = cpts_sos_requests
    slots = _of(requests, "Slot")
    assert slots, f"no Slot search sent ({run.get('errors')})"
    for request in slots:
        assert rule_violations(request) == [], request.raw_query
        assert sorted(request.all("_include")) == ["Slot:schedule", "Slot:service-type-reference"]
        assert sorted(request.all("_include:iterate")) == ["HealthcareService:organization", "Schedule:actor"]


def test_client_sos_schedule_search_siret_prefixed(cpts_sos_requests):
    """SOS search (specifications_techniques-sos-recherche_creneaux.md, SIRET avec préfixe correspondant;
    FrOrganizationAgregateurSOS SIRET-invariant ^3[0-9]{14}$): actor:Location.organization.identifier =
    urn:oid:1.2.250.1.71.4.2.2|3<SIRET> for every association, and the _revinclude / _include / _has criteria."""
    requests, run = cpts_sos_requests
    schedules = _of(requests, "Schedule")
    assert schedules, f"no Schedule search sent ({run.get('errors')})"
    for request in schedules:
        assert rule_violations(request) == [], request.raw_query
    tokens = sorted(t for r in schedules for t in r.all("actor:Location.organization.identifier")[0].split(","))
    assert tokens == sorted(f"{p.STRUCTURE_SYSTEM}|3{siret}" for siret in SIRETS)
    assert run["status"] == "success", run.get("errors")


@pytest.mark.parametrize("fixture", ["ps_requests", "cpts_sos_requests"])
def test_client_ids_per_request_within_limit(request, fixture):
    """Critères de recherche: 1..25 ids per request; 30 practitioners → two requests covering all 30 once."""
    requests, _ = request.getfixturevalue(fixture)
    slots = _of(requests, "Slot")
    per_request = [r.all("schedule.actor:Practitioner.identifier")[0].split(",") for r in slots]
    assert per_request and all(1 <= len(ids) <= 25 for ids in per_request)
    asked = sorted(t.split("|", 1)[1] for ids in per_request for t in ids)
    assert asked == sorted(PRACTITIONERS)


def test_client_sos_ids_per_request_within_limit(cpts_sos_requests):
    """SOS: 1 to 10 SIRET per request (specifications_fonctionnelles.md, "une liste de 1 à 10 SIRET"; the
    technical table allows 1..25, ten satisfies both): 12 associations → two requests covering all once."""
    requests, _ = cpts_sos_requests
    per_request = [r.all("actor:Location.organization.identifier")[0].split(",") for r in _of(requests, "Schedule")]
    assert len(per_request) >= 2 and all(1 <= len(ids) <= 10 for ids in per_request)
    assert sorted(t for ids in per_request for t in ids) == sorted(f"{p.STRUCTURE_SYSTEM}|3{s}" for s in SIRETS)


# -- the strict vendor's own judgement, proved on the guide's requests ----------------------------------------

def _captured(url: str) -> Captured:
    parts = urlsplit(url)
    return Captured(method="GET", path=parts.path, raw_query=parts.query, headers={"accept": "application/json+fhir"},
                    pairs=parse_qsl(parts.query, keep_blank_values=True))


GUIDE_CPTS_REQUEST = ("https://vendor.example/Slot?_include=Slot:schedule&_include:iterate=Schedule:actor"
                      "&_include=Slot:service-type-reference&_include:iterate=HealthcareService:organization"
                      "&start=ge2024-06-12T16:20:00.000+02:00&start=le2024-06-15T16:20:00.000+02:00"
                      "&schedule.actor:Practitioner.identifier=urn:oid:1.2.250.1.71.4.2.1|810002909371,"
                      "urn:oid:1.2.250.1.71.4.2.1|810001288385&status=free").replace("+", "%2B")
GUIDE_SOS_SELF_LINK = ("https://editeur.fr/Schedule?_revinclude=Slot:schedule&_include=Schedule:actor:Location"
                       "&_include:iterate=Location:organization&_has:Slot:schedule:start=ge2023-08-18T09:00:00%2B02:00"
                       "&_has:Slot:schedule:start=le2023-08-20T08:00:00%2B02:00&_has:Slot:schedule:status=free"
                       "&actor:Location.organization.identifier=urn:oid:1.2.250.1.71.4.2.2%7C334173748400020,"
                       "urn:oid:1.2.250.1.71.4.2.2%7C392080466300010&_count=1000")


def test_strict_vendor_accepts_the_guide_requests():
    """The guide's own INT_R04 example request and SOS example Bundle's self link pass the strict vendor."""
    assert rule_violations(_captured(GUIDE_CPTS_REQUEST)) == []
    assert rule_violations(_captured(GUIDE_SOS_SELF_LINK)) == []


def test_strict_vendor_refuses_what_the_guide_forbids():
    """Bare SIRET, missing status, a lone CPTS include, 26 ids: each is named."""
    bare = _captured(GUIDE_SOS_SELF_LINK.replace("%7C334173748400020", "%7C34173748400020"))
    assert any("3<SIRET>" in v for v in rule_violations(bare))
    no_status = _captured(GUIDE_CPTS_REQUEST.replace("&status=free", ""))
    assert any(v.startswith("status") for v in rule_violations(no_status))
    lone = _captured(GUIDE_CPTS_REQUEST.replace("&_include:iterate=HealthcareService:organization", ""))
    assert any("INT_R04" in v for v in rule_violations(lone))
    many = ",".join(f"urn:oid:1.2.250.1.71.4.2.1|8100000000{n:02d}" for n in range(26))
    too_many = _captured(GUIDE_CPTS_REQUEST.split("&schedule.actor")[0] + "&schedule.actor:Practitioner.identifier="
                         + many + "&status=free")
    assert any("26 ids" in v for v in rule_violations(too_many))
