"""INT_L01: the contextual call opens the search pre-filled, the patient's own doctor first when he
has slots."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone

import httpx
import pytest
import uvicorn
from elasticsearch import helpers

from bench.common import free_port
from sas_core.logging import configure_logging, flush_logs
from tests.integration.workflow.conftest import ServerThread

NOW = datetime.now(timezone.utc).replace(microsecond=0)
WEEK = {"from": NOW.isoformat(), "to": (NOW + timedelta(days=7)).isoformat()}


def _last_ranked(wf_offers: dict[str, list[dict]], ranked: list[str]) -> dict:
    """The offer the plain search ranked last, whichever group it belongs to: earlier tests of the package
    may have given an own-agenda offer (``wf-sas-*``) a free place, and the farthest offer ranks last."""
    return next(o for group in wf_offers.values() for o in group if o["id"] == ranked[-1])


def test_contextual_call_prefills_and_puts_the_own_doctor_first(wf_api, wf_offers, regulator_headers):
    baseline = wf_api.get("/recherche", params={"adresse": "12 rue Sainte-Catherine", "code_postal": "33000",
                                                "ville": "Bordeaux", "specialite": "SM54", "samu": "330", **WEEK},
                          headers=regulator_headers)
    assert baseline.status_code == 200, baseline.text
    body = baseline.json()
    assert body["prefill"]["territory"] == "SAS-33" and body["prefill"]["samu"] == "330"
    assert body["prefill"]["search_parameters"] == {"q": "12 rue Sainte-Catherine, 33000 Bordeaux",
                                                    "specialty": ["SM54"]}
    ranked = [c["offer"]["id"] for c in body["results"]]
    assert len(ranked) >= 2
    own = _last_ranked(wf_offers, ranked)

    answer = wf_api.get("/recherche", params={"code_postal": "33000", "ville": "Bordeaux", "specialite": "SM54",
                                              "medecin_traitant": own["national_id"], "samu": "330", **WEEK},
                        headers=regulator_headers)
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["own_doctor"] == {"national_id": own["national_id"], "known": True, "has_slots": True}
    assert result["results"][0]["offer"]["id"] == own["id"] and result["results"][0]["own_doctor"] is True
    assert [c["offer"]["id"] for c in result["results"]].count(own["id"]) == 1

    redirect = wf_api.get("/recherche", params={"ville": "Bordeaux", "format": "redirect"}, headers=regulator_headers,
                          follow_redirects=False)
    assert redirect.status_code == 303 and redirect.headers["location"] == "/v1/search?q=Bordeaux"


def test_contextual_call_errors(wf_api, regulator_headers, token_for):
    assert wf_api.get("/recherche", params={"specialite": "SM54"}, headers=regulator_headers).status_code == 400
    assert wf_api.get("/recherche", params={"ville": "Bordeaux", "samu": "abc"},
                      headers=regulator_headers).status_code == 400
    assert wf_api.get("/recherche", params={"ville": "Bordeaux"}).status_code == 401
    assert wf_api.get("/recherche", params={"ville": "Bordeaux"},
                      headers=token_for("effecteur", national_id="810000000018")).status_code == 403


# --- The parameter names regulation software sends the national platform -----------------------------------

RPPS_SYSTEM = "urn:oid:1.2.250.1.71.4.2.1"


def test_national_parameter_names_open_the_same_search(wf_api, wf_offers, regulator_headers):
    french = wf_api.get("/recherche", params={"adresse": "12 rue Sainte-Catherine", "code_postal": "33000",
                                              "ville": "Bordeaux", "specialite": "SM54", **WEEK},
                        headers=regulator_headers)
    assert french.status_code == 200, french.text
    ranked = [c["offer"]["id"] for c in french.json()["results"]]
    assert len(ranked) >= 2
    own = _last_ranked(wf_offers, ranked)

    # The city comes from the INSEE code (the gazetteer's Bordeaux), the specialty from its coded form,
    # the patient's own doctor from the national identifier system.
    answer = wf_api.get("/recherche", params={
        "origin": "fr.health.samu330", "streetnumber": "12", "streetname": "rue Sainte-Catherine",
        "inseecode": "33063", "specialty": "urn:oid:1.2.250.1.213.2.28|SM54",
        "practitioner": f"{RPPS_SYSTEM}|{own['national_id']}", **WEEK}, headers=regulator_headers)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    prefill = body["prefill"]
    assert prefill["origin"] == "fr.health.samu330" and prefill["territory"] == "SAS-33" and prefill["samu"] == "330"
    assert prefill["city"] == "Bordeaux" and prefill["insee"] == "33063" and prefill["postcode"] == "33000"
    assert prefill["search_parameters"] == {"q": "12 rue Sainte-Catherine, 33000 Bordeaux", "specialty": ["SM54"]}
    assert prefill["own_doctor"] == own["national_id"] and prefill["warnings"] == []
    assert body["origin"]["insee"] == "33063"
    assert body["own_doctor"] == {"national_id": own["national_id"], "known": True, "has_slots": True}
    ids = [c["offer"]["id"] for c in body["results"]]
    # Own doctor first, every other card in the order the plain search ranked them (neutral ranking kept).
    assert ids[0] == own["id"] and body["results"][0]["own_doctor"] is True
    assert ids[1:] == [i for i in ranked if i != own["id"]]

    # ``city`` without INSEE code, a label, several specialty values: accepted as well.
    by_city = wf_api.get("/recherche", params={"origin": "fr.health.samu330", "city": "Bordeaux",
                                               "specialty": ["Médecine générale", "SM26"], **WEEK},
                         headers=regulator_headers)
    assert by_city.status_code == 200, by_city.text
    assert by_city.json()["prefill"]["specialties"] == ["Médecine générale", "SM26"]
    assert {c["offer"]["id"] for c in by_city.json()["results"]} == set(ranked)


def test_national_parameter_names_refusals_and_notices(wf_api, regulator_headers):
    unknown = wf_api.get("/recherche", params={"origin": "fr.health.samu990", "inseecode": "33063"},
                         headers=regulator_headers)
    assert unknown.status_code == 400, unknown.text
    assert unknown.json()["error"] == "unknown_origin" and "Origine inconnue" in unknown.json()["message"]
    assert unknown.json()["details"] == {"parameter": "origin"}
    for params in ({"origin": "", "city": "Bordeaux"}, {"origin": "samu330", "city": "Bordeaux"}):
        refused = wf_api.get("/recherche", params=params, headers=regulator_headers)
        assert refused.status_code == 400 and refused.json()["error"] == "unknown_origin", refused.text
    for params, words in (({"origin": "fr.health.samu330", "streetnumber": "12", "inseecode": "33063"}, "streetname"),
                          ({"origin": "fr.health.samu330", "inseecode": "99999"}, "INSEE"),
                          ({"origin": "fr.health.samu330", "inseecode": "33063", "specialty": "urn:oid:1.2|SM99"},
                           "SM99")):
        refused = wf_api.get("/recherche", params=params, headers=regulator_headers)
        assert refused.status_code == 400 and words in refused.json()["message"], refused.text
    # A doctor the regulation software could not identify does not block the patient's search.
    answer = wf_api.get("/recherche", params={"origin": "fr.health.samu330", "inseecode": "33063",
                                              "practitioner": "urn:oid:1.2.250.1.213.3.6|b6e39355", **WEEK},
                        headers=regulator_headers)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["own_doctor"] is None and body["results"]
    assert any("n'a pas pu être identifié" in w for w in body["prefill"]["warnings"])
    # No specialty from the regulation software: general practice, as the national platform opens it.
    assert body["prefill"]["specialties"] == ["SM54"]


# --- No trace of the patient's address -----------------------------------------------------------------------

STREET = "impasse Zéphyrine-Quatrebarbes"


class _Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def logged_app(wf_settings, es, harvested):
    """The real app under uvicorn with logging as ``sas serve`` sets it up (JSON logs, access lines on);
    every record any logger emits is also kept for the test."""
    from search_api.app import create_app

    root = logging.getLogger()
    uvicorn_loggers = [logging.getLogger(name) for name in ("uvicorn", "uvicorn.error", "uvicorn.access")]
    saved = (root.handlers[:], root.level)
    saved_uvicorn = [(lg.handlers[:], lg.propagate, lg.level) for lg in uvicorn_loggers]
    for lg in uvicorn_loggers:      # as under `sas serve` (log_config=None): they propagate to the root logger
        lg.handlers[:], lg.propagate = [], True
    configure_logging(level="DEBUG", json_format=True)
    keep = _Keep()
    root.addHandler(keep)
    port = free_port()
    config = uvicorn.Config(create_app(wf_settings, es=es), host="127.0.0.1", port=port, log_config=None,
                            access_log=True, log_level="info")
    try:
        with ServerThread(config):
            yield f"http://127.0.0.1:{port}", keep.records
    finally:
        flush_logs()
        root.handlers[:], root.level = saved
        for lg, (handlers, propagate, level) in zip(uvicorn_loggers, saved_uvicorn, strict=True):
            lg.handlers[:], lg.propagate, lg.level = handlers, propagate, level


def test_the_patients_address_is_neither_logged_nor_stored(logged_app, es, wf_settings, regulator_headers):
    base_url, records = logged_app
    params = {"origin": "fr.health.samu330", "streetnumber": "7", "streetname": STREET, "inseecode": "33063",
              "specialty": "SM54", **WEEK}
    with httpx.Client(base_url=base_url, headers=regulator_headers, timeout=30) as client:
        api = client.get("/recherche", params=params)
        assert api.status_code == 200 and api.json()["prefill"]["address"] == f"7 {STREET}", api.text
        page = client.get("/app/recherche", params=params)
        assert page.status_code == 200 and f"7 {STREET}, 33000 Bordeaux" in page.text
        refused = client.get("/recherche", params={**params, "origin": "fr.health.samu999"})
        assert refused.status_code == 400
    flush_logs()
    access = [r for r in records if r.name == "uvicorn.access"]
    assert len(access) >= 3, "uvicorn wrote no access line"
    lines = [r.getMessage() for r in access]
    assert any('"GET /recherche HTTP/1.1" 200' in line for line in lines), lines
    assert any('"GET /app/recherche HTTP/1.1" 200' in line for line in lines), lines
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in records)
    for needle in ("Quatrebarbes", "Zéphyrine", "streetname", "inseecode=", "samu999"):
        assert needle not in logged, needle

    pattern = f"{wf_settings.index_prefix}-*"
    es.indices.refresh(index=pattern)
    scanned = 0
    for hit in helpers.scan(es, index=pattern, query={"query": {"match_all": {}}}):
        scanned += 1
        assert "quatrebarbes" not in json.dumps(hit["_source"], ensure_ascii=False).lower(), hit["_id"]
    assert scanned > 0


def test_a_deployment_can_switch_the_contextual_call_off_for_a_samu(wf_settings, es, harvested, regulator_headers):
    from fastapi.testclient import TestClient

    from search_api.app import create_app

    only_47 = wf_settings.model_copy(update={"contextual_origins": ["fr.health.samu470"]})
    with TestClient(create_app(only_47, es=es)) as client:
        refused = client.get("/recherche", params={"origin": "fr.health.samu330", "inseecode": "33063"},
                             headers=regulator_headers)
        assert refused.status_code == 400 and refused.json()["error"] == "unknown_origin", refused.text
        allowed = client.get("/recherche", params={"origin": "fr.health.samu470", "inseecode": "33063", **WEEK},
                             headers=regulator_headers)
        assert allowed.status_code == 200 and allowed.json()["prefill"]["territory"] == "SAS-47", allowed.text
