"""INT_L01: the contextual call opens the search pre-filled, the patient's own doctor first when he
has slots."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

NOW = datetime.now(timezone.utc).replace(microsecond=0)
WEEK = {"from": NOW.isoformat(), "to": (NOW + timedelta(days=7)).isoformat()}


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
    own = next(o for o in wf_offers["medilib"] + wf_offers["agendax"] if o["id"] == ranked[-1])

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
