"""Issue 17, point 6: a practitioner's unavailability "at every place" (the form's default, and the API without
``offer_id``) is filed under the territories of his places, so that his SAS's regulators see it, and names him
as the directory does (not the login's display name). Real app, real Elasticsearch."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient

from mappings.registry import alias_name
from search_api.app import create_app
from tests.integration.workflow.conftest import bordeaux_offer
from tests.weblogin import post_login

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def web(settings, es, indices):
    with TestClient(create_app(settings, es=es), follow_redirects=False) as client:
        yield client


def _place(es, settings, i: int, *, territory: str, national_id: str | None = None) -> dict:
    offer = {**bordeaux_offer(i, vendor=None), "id": f"web-unavail-{i}"}
    if national_id:
        offer["national_id"] = national_id
    offer.update(territory=territory, departement=territory[4:])
    es.index(index=alias_name(settings.index_prefix, "offers"), id=offer["id"], document=offer, refresh=True)
    return offer


def _seen_by(web, token_for, territory: str, national_id: str) -> list[dict]:
    answer = web.get("/v1/declarations", params={"national_id": national_id},
                     headers=token_for("regulator", territories=[territory]))
    assert answer.status_code == 200, answer.text
    return [d for d in answer.json()["results"] if d["subject_national_id"] == national_id]


def test_every_place_unavailability_from_the_page_reaches_the_practitioners_sas(web, es, settings, token_for):
    offer = _place(es, settings, 61, territory="SAS-33")
    web.cookies.clear()
    # The login's display name differs from the directory's: the declaration must carry the directory's.
    assert post_login(web, {"role": "effecteur", "territories": "", "national_id": offer["national_id"],
                            "name": "Dr Pseudo", "next": "/app/espace"}).status_code == 303
    page = web.get("/app/espace")
    csrf = page.text.split('data-csrf="', 1)[1].split('"', 1)[0]
    tomorrow = (datetime.now(timezone.utc) + timedelta(days=1)).date().isoformat()
    declared = web.post("/app/espace/indisponibilites",
                        data={"csrf": csrf, "offer_id": "", "du": tomorrow, "au": tomorrow})
    assert declared.status_code == 303 and "message=" in declared.headers["location"], declared.headers["location"]

    seen = _seen_by(web, token_for, "SAS-33", offer["national_id"])
    assert len(seen) == 1
    assert seen[0]["territory"] == "SAS-33" and seen[0]["scope"] == "practitioner"
    assert seen[0]["subject_name"] == offer["name"] != "Dr Pseudo"
    assert _seen_by(web, token_for, "SAS-47", offer["national_id"]) == []     # another SAS does not
    # The regulators' declarations page of SAS-33 lists it.
    web.cookies.clear()
    assert post_login(web, {"role": "regulator", "territories": "SAS-33", "next": "/app/recherche"}).status_code == 303
    assert offer["name"] in web.get("/app/tableaux/declarations").text


def test_places_in_two_territories_give_one_declaration_both_sas_see(web, es, settings, token_for):
    first = _place(es, settings, 62, territory="SAS-33")
    _place(es, settings, 63, territory="SAS-47", national_id=first["national_id"])
    start = (datetime.now(timezone.utc) + timedelta(days=2)).replace(microsecond=0)
    answer = web.post("/v1/declarations/unavailability",
                      json={"periods": [{"start": start.isoformat(), "end": (start + timedelta(days=1)).isoformat()}]},
                      headers=token_for("effecteur", national_id=first["national_id"], name="Login Name"))
    assert answer.status_code == 201, answer.text
    assert answer.json()["territory"] == ["SAS-33", "SAS-47"]
    assert answer.json()["subject_name"] == first["name"]
    for territory in ("SAS-33", "SAS-47"):
        assert [d["id"] for d in _seen_by(web, token_for, territory, first["national_id"])] == [answer.json()["id"]]
    assert _seen_by(web, token_for, "SAS-92", first["national_id"]) == []
    # SAS-47's declarations page lists it (and never a Python list of territories).
    web.cookies.clear()
    assert post_login(web, {"role": "regulator", "territories": "SAS-47", "next": "/app/recherche"}).status_code == 303
    page = web.get("/app/tableaux/declarations").text
    assert first["name"] in page and "[&#39;SAS" not in page and "['SAS" not in page


def test_every_place_unavailability_filed_without_territory_before_is_refiled(web, es, settings, token_for):
    """A declaration the old code wrote (practitioner-wide, no territory, the login's name) is filed under his
    places' territory by ``sas declarations refile-unavailability`` (run here through its service)."""
    import uuid

    from mappings.declarations import DeclarationDoc, DeclarationPeriod
    from search_api.executor import Executor
    from search_api.workflow.declarations import DeclarationService
    from search_api.workflow.store import DocStore

    offer = _place(es, settings, 64, territory="SAS-33")
    now = datetime.now(timezone.utc)
    legacy = DeclarationDoc(
        id=uuid.uuid4().hex, kind="unavailable", scope="practitioner", declared_by_role="effecteur",
        declared_by="old-login", declared_by_name="Dr Pseudo", subject_national_id=offer["national_id"],
        subject_name="Dr Pseudo", national_id=offer["national_id"], territory=None,
        periods=[DeclarationPeriod(start=now, end=now + timedelta(days=2))], created_at=now,
    ).model_dump(mode="json")
    es.index(index=alias_name(settings.index_prefix, "declarations"), id=legacy["id"], document=legacy, refresh=True)
    assert _seen_by(web, token_for, "SAS-33", offer["national_id"]) == []

    service = DeclarationService(store=DocStore(Executor(es=es, prefix=settings.index_prefix)))
    changed = service.refile_unavailability()
    assert {"id": legacy["id"], "territory": "SAS-33", "subject_name": offer["name"]} in changed
    assert legacy["id"] not in {c["id"] for c in service.refile_unavailability()}      # idempotent
    (seen,) = _seen_by(web, token_for, "SAS-33", offer["national_id"])
    assert (seen["id"], seen["territory"], seen["subject_name"]) == (legacy["id"], "SAS-33", offer["name"])
