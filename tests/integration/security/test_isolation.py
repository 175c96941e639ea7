"""Territory and ownership isolation on the real app and index: a regulator of SAS-92 never sees the
orientations, declarations or dashboards of SAS-47 (and the other way round); an effecteur sees only his own
orientations; a structure manager only his structure's members (orientations, CPTS card)."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from elasticsearch import helpers

from mappings.common import GeoPoint
from mappings.declarations import DeclarationDoc, DeclarationPeriod
from mappings.offers import OfferAddress, OfferDoc, OfferSas, OfferStructure
from mappings.orientations import OrientationDoc, OrientationEffecteur, OrientationRegulator, OrientationStructure
from mappings.registry import alias_name
from sas_core.text import fold
from tests.integration.security.conftest import (
    EFFECTEUR_ID,
    OTHER_EFFECTEUR_ID,
    OTHER_STRUCTURE_FINESS,
    STRUCTURE_FINESS,
)

NOW = datetime.now(timezone.utc).replace(microsecond=0)


def orientation(*, territory: str, effecteur: str, structure_finess: str | None, name: str) -> dict:
    oid = f"iso-{uuid.uuid4().hex[:20]}"
    return OrientationDoc(
        id=oid, created_at=NOW - timedelta(hours=2), updated_at=NOW - timedelta(hours=2),
        consultation_start=NOW + timedelta(hours=3), consultation_end=NOW + timedelta(hours=3, minutes=20),
        regulator=OrientationRegulator(id=f"reg-{territory}", name="Régulateur test", territory=territory),
        effecteur=OrientationEffecteur(national_id=effecteur, name=name, specialty="SM54", territory=territory),
        structure=OrientationStructure(id=f"1{structure_finess}" if structure_finess else None,
                                       name="CPTS test" if structure_finess else None),
        offer_id=f"iso-offer-{effecteur}", territory=territory, category="CPTS" if structure_finess else "PS",
        source="vendor", booking_mode="redirect", vendor="medilib", status="oriented",
    ).model_dump(mode="json")


def declaration(*, territory: str, national_id: str) -> dict:
    return DeclarationDoc(
        id=uuid.uuid4().hex, kind="other", declared_by_role="regulator", declared_by=f"reg-{territory}",
        subject_national_id=national_id, offer_id=f"iso-offer-{national_id}", territory=territory,
        periods=[DeclarationPeriod(start=NOW, end=NOW + timedelta(hours=4))], created_at=NOW - timedelta(hours=1),
    ).model_dump(mode="json")


def cpts_offer(finess: str, *, city: str, postcode: str, territory: str, lat: float, lon: float) -> dict:
    name = f"CPTS de {city}"
    return OfferDoc(
        id=f"iso-cpts-{finess}", kind="cpts", name=name, name_folded=fold(name),
        address=OfferAddress(line="1 place de la Mairie", postcode=postcode, city=city, city_folded=fold(city),
                             text=f"1 place de la Mairie, {postcode} {city}"),
        departement=postcode[:2], territory=territory, location=GeoPoint(lat=lat, lon=lon), phones=["+33100000000"],
        structure=OfferStructure(name=name, finess=finess), sas=OfferSas(participates=True), source="finess",
    ).model_dump(mode="json")


def member_offer(national_id: str, finess: str, *, family: str, given: str, postcode: str, city: str,
                 territory: str, lat: float, lon: float) -> dict:
    name = f"{given} {family}"
    return OfferDoc(
        id=f"iso-offer-{national_id}", kind="ps", national_id=national_id, national_id_type="rpps",
        last_name=family, first_name=given, name=name, name_folded=fold(name), profession_code="10",
        specialties=["SM54"], specialty_labels=["Médecine générale"],
        address=OfferAddress(line="3 rue de la République", postcode=postcode, city=city, city_folded=fold(city),
                             text=f"3 rue de la République, {postcode} {city}"),
        departement=postcode[:2], territory=territory, location=GeoPoint(lat=lat, lon=lon), phones=["+33100000001"],
        sas=OfferSas(participates=True, cpts_finess=finess, cpts_name="CPTS test"), source="rpps",
    ).model_dump(mode="json")


@pytest.fixture(scope="module")
def world(es, settings, indices):
    """Orientations and declarations in SAS-92 and SAS-47; two CPTS with one member each."""
    docs = {
        "o92_mine": orientation(territory="SAS-92", effecteur=EFFECTEUR_ID, structure_finess=STRUCTURE_FINESS,
                                name="Hélène DURAND"),
        "o92_other": orientation(territory="SAS-92", effecteur=OTHER_EFFECTEUR_ID, structure_finess=None,
                                 name="Marc LEROY"),
        "o47": orientation(territory="SAS-47", effecteur=OTHER_EFFECTEUR_ID, structure_finess=OTHER_STRUCTURE_FINESS,
                           name="Marc LEROY"),
    }
    declarations = {"d92": declaration(territory="SAS-92", national_id=EFFECTEUR_ID),
                    "d47": declaration(territory="SAS-47", national_id=OTHER_EFFECTEUR_ID)}
    offers = [
        cpts_offer(STRUCTURE_FINESS, city="Nanterre", postcode="92000", territory="SAS-92", lat=48.8924, lon=2.2071),
        cpts_offer(OTHER_STRUCTURE_FINESS, city="Agen", postcode="47000", territory="SAS-47", lat=44.2028, lon=0.6256),
        member_offer(EFFECTEUR_ID, STRUCTURE_FINESS, family="DURAND", given="Hélène", postcode="92000",
                     city="Nanterre", territory="SAS-92", lat=48.8930, lon=2.2080),
        member_offer(OTHER_EFFECTEUR_ID, OTHER_STRUCTURE_FINESS, family="LEROY", given="Marc", postcode="47000",
                     city="Agen", territory="SAS-47", lat=44.2030, lon=0.6260),
    ]
    prefix = settings.index_prefix
    actions = [{"_index": alias_name(prefix, "orientations"), "_id": d["id"], "_source": d} for d in docs.values()]
    actions += [{"_index": alias_name(prefix, "declarations"), "_id": d["id"], "_source": d}
                for d in declarations.values()]
    actions += [{"_index": alias_name(prefix, "offers"), "_id": o["id"], "_source": o} for o in offers]
    helpers.bulk(es, actions, refresh=True)
    yield {**{k: d["id"] for k, d in docs.items()}, **{k: d["id"] for k, d in declarations.items()}}
    # The session's indices are shared: other tests expect SAS-92 to hold no orientation of theirs.
    helpers.bulk(es, ({"_op_type": "delete", "_index": a["_index"], "_id": a["_id"]} for a in actions),
                 refresh=True, raise_on_error=False)


def listed(api, headers, path="/v1/orientations", **params) -> list[dict]:
    response = api.get(path, headers=headers, params={"size": 200, **params})
    assert response.status_code == 200, response.text
    return response.json()["results"]


def test_regulators_see_their_territory_only(api, token_for, world):
    for mine, theirs, territory in ((("o92_mine", "o92_other"), ("o47",), "SAS-92"),
                                    (("o47",), ("o92_mine", "o92_other"), "SAS-47")):
        regulator = token_for("regulator", territories=[territory], sub=f"iso-reg-{territory}")
        results = listed(api, regulator)
        ids = {o["id"] for o in results}
        assert {world[k] for k in mine} <= ids
        assert not {world[k] for k in theirs} & ids
        assert {o["territory"] for o in results} == {territory}
        # asking for the other territory explicitly changes nothing
        other = "SAS-47" if territory == "SAS-92" else "SAS-92"
        assert listed(api, regulator, territory=other) == []
        for key in theirs:
            assert api.get(f"/v1/orientations/{world[key]}", headers=regulator).status_code == 404
            assert api.post(f"/v1/orientations/{world[key]}/cancel", headers=regulator).status_code == 404
        assert api.get(f"/v1/orientations/{world[mine[0]]}", headers=regulator).status_code == 200
        export = api.get("/v1/orientations/export.csv", headers=regulator)
        assert export.status_code == 200
        rows = list(csv.reader(io.StringIO(export.content.decode("utf-8-sig")), delimiter=";"))
        territory_column = rows[0].index("territoire")
        assert {row[territory_column] for row in rows[1:]} == {territory}
        assert len(rows) - 1 == len(results)  # the same orientations as the list


def test_regulator_dashboards_and_declarations_stay_in_territory(api, token_for, world):
    regulator = token_for("regulator", territories=["SAS-92"], sub="iso-reg-dash")
    dashboard = api.get("/v1/dashboards/orientations", headers=regulator).json()
    assert {row["territory"] for row in dashboard["per_territory"]} == {"SAS-92"}
    assert api.get("/v1/dashboards/orientations", headers=regulator,
                   params={"territory": "SAS-47"}).json()["total"] == 0
    declarations = api.get("/v1/dashboards/declarations", headers=regulator).json()
    assert {row["territory"] for row in declarations["per_territory"]} == {"SAS-92"}
    participation = api.get("/v1/dashboards/participation", headers=regulator,
                            params={"territory": ["SAS-92", "SAS-47"]}).json()
    assert {row["territory"] for row in participation["per_territory"]} == {"SAS-92"}
    listed_declarations = api.get("/v1/declarations", headers=regulator, params={"size": 200}).json()["results"]
    ids = {d["id"] for d in listed_declarations}
    assert world["d92"] in ids and world["d47"] not in ids
    assert {d["territory"] for d in listed_declarations} == {"SAS-92"}
    assert api.delete(f"/v1/declarations/{world['d47']}", headers=regulator).status_code in (403, 404)


def test_effecteur_sees_only_his_own_orientations(api, token_for, world):
    effecteur = token_for("effecteur", national_id=EFFECTEUR_ID, sub="iso-eff")
    results = listed(api, effecteur)
    assert world["o92_mine"] in {o["id"] for o in results}
    assert {o["effecteur"]["national_id"] for o in results} == {EFFECTEUR_ID}
    assert api.get(f"/v1/orientations/{world['o92_other']}", headers=effecteur).status_code == 404
    assert api.post(f"/v1/orientations/{world['o92_other']}/honoured", headers=effecteur).status_code == 404
    declarations = api.get("/v1/declarations", headers=effecteur, params={"active": "true"}).json()["results"]
    assert {d["subject_national_id"] for d in declarations} <= {EFFECTEUR_ID}
    # an effecteur has no territorial dashboard
    assert api.get("/v1/dashboards/orientations", headers=effecteur).status_code == 403


def test_structure_manager_sees_only_his_members(api, token_for, world):
    manager = token_for("structure_manager", structure_id=STRUCTURE_FINESS, territories=["SAS-92"], sub="iso-sm")
    results = listed(api, manager)
    ids = {o["id"] for o in results}
    assert world["o92_mine"] in ids
    assert world["o92_other"] not in ids and world["o47"] not in ids  # same territory, not his structure
    assert {o["structure"]["id"] for o in results} == {f"1{STRUCTURE_FINESS}"}
    assert api.get(f"/v1/orientations/{world['o47']}", headers=manager).status_code == 404
    # his CPTS card with its member; another CPTS is unknown to him, not to a regulator
    card = api.get(f"/v1/cpts/{STRUCTURE_FINESS}", headers=manager)
    assert card.status_code == 200, card.text
    assert [m["offer"]["national_id"] for m in card.json()["members"]] == [EFFECTEUR_ID]
    assert api.get(f"/v1/cpts/iso-cpts-{STRUCTURE_FINESS}", headers=manager).status_code == 200
    assert api.get(f"/v1/cpts/{OTHER_STRUCTURE_FINESS}", headers=manager).status_code == 404
    # the web interface's CPTS page applies the same rule
    assert api.get(f"/app/cpts/{STRUCTURE_FINESS}", headers=manager).status_code == 200
    assert api.get(f"/app/cpts/{OTHER_STRUCTURE_FINESS}", headers=manager).status_code == 404
    regulator = token_for("regulator", territories=["SAS-92"], sub="iso-reg-cpts")
    other = api.get(f"/v1/cpts/{OTHER_STRUCTURE_FINESS}", headers=regulator)
    assert other.status_code == 200 and [m["offer"]["national_id"]
                                         for m in other.json()["members"]] == [OTHER_EFFECTEUR_ID]
    # a structure manager without a structure claim sees no orientation at all
    assert api.get("/v1/orientations", headers=token_for("structure_manager", sub="iso-sm-none")).status_code == 403


def test_integrator_key_reads_no_orientation(api, headers_for, world):
    from search_api.auth import Role

    assert api.get("/v1/orientations", headers=headers_for(Role.INTEGRATOR)).status_code == 403
    assert api.get(f"/v1/orientations/{world['o92_mine']}", headers=headers_for(Role.INTEGRATOR)).status_code == 403


def test_account_managers_manage_their_territories_only(api, token_for):
    manager92 = token_for("account_manager", territories=["SAS-92"], sub="iso-am-92")
    manager47 = token_for("account_manager", territories=["SAS-47"], sub="iso-am-47")
    account = f"iso-acc-{uuid.uuid4().hex[:8]}"
    created = api.put(f"/v1/accounts/{account}", headers=manager47,
                      json={"family_name": "GARNIER", "given_name": "Lucie", "territories": ["SAS-47"]})
    assert created.status_code == 200, created.text
    # the SAS-92 manager can neither read, take over, nor remove it, nor create accounts elsewhere
    assert api.get(f"/v1/accounts/{account}", headers=manager92).status_code == 404
    # 404 like GET (issue 15, point 5: these answered 403, telling that the account exists)
    assert api.put(f"/v1/accounts/{account}", headers=manager92,
                   json={"family_name": "GARNIER", "territories": ["SAS-92"]}).status_code == 404
    assert api.delete(f"/v1/accounts/{account}", headers=manager92).status_code == 404
    assert api.put(f"/v1/accounts/iso-acc-{uuid.uuid4().hex[:8]}", headers=manager92,
                   json={"family_name": "X", "territories": ["SAS-47"]}).status_code == 403
    assert api.get(f"/v1/accounts/{account}", headers=manager47).status_code == 200
    # unknown roles are refused, not stored and pushed to vendors
    assert api.put(f"/v1/accounts/{account}", headers=manager47,
                   json={"family_name": "GARNIER", "territories": ["SAS-47"], "roles": ["root"]}).status_code == 422
