"""The ANS test kit's INT_R02 checks (group "Gestion des comptes régulateurs - Flux V1"), ported against the
strict vendor simulator over mutual TLS. Each test is named after the kit check it ports; each builds its own
accounts (fresh identifiers) so that it does not depend on the order of the others, and checks what the
vendor holds afterwards, not only the status code.

Where the kit's request contradicts its own description and the guide, the test follows the guide and says so
(``modification_typeid_regulateur_test``)."""

from __future__ import annotations

import copy
import uuid

import httpx
import pytest

from tests.conformance.regulator_accounts.conftest import (
    PLATFORM,
    RPPS,
    admin,
    fhir_base,
    holding,
    key,
    regulator,
)

pytestmark = pytest.mark.integration


def post(kit: httpx.Client, body: dict) -> httpx.Response:
    return kit.post("Practitioner", json=body)


def put(kit: httpx.Client, identifier: str, body: dict) -> httpx.Response:
    return kit.put("Practitioner", params={"identifier": identifier}, json=body)


def created(kit: httpx.Client, body: dict) -> dict:
    answer = post(kit, body)
    assert answer.status_code == 201, answer.text
    return answer.json()


def issues(answer: httpx.Response) -> list[str]:
    outcome = answer.json()
    assert outcome["resourceType"] == "OperationOutcome"
    return [where for issue in outcome["issue"] for where in issue.get("expression") or []]


# -- creation ---------------------------------------------------------------------------------------------------


def test_creation_regulateur_idnps_test(kit, strict_vendor):
    body = regulator(system=RPPS)
    answer = post(kit, body)
    assert answer.status_code == 201, answer.text
    resource_id = answer.json()["id"]
    assert answer.headers["Location"] == f"{fhir_base(strict_vendor)}/Practitioner/{resource_id}"
    [stored] = holding(strict_vendor, RPPS, body["identifier"][0]["value"])
    assert stored["id"] == resource_id and stored["active"] is True
    assert stored["name"] == body["name"] and stored["telecom"] == body["telecom"]


def test_creation_regulateur_uuid_test(kit, strict_vendor):
    body = regulator(system=PLATFORM)
    answer = post(kit, body)
    assert answer.status_code == 201, answer.text
    [stored] = holding(strict_vendor, PLATFORM, body["identifier"][0]["value"])
    assert stored["identifier"][0]["type"]["coding"][0]["code"] == "INTRN"


def test_creation_double_regulateur_uuid_test(kit, strict_vendor):
    body = regulator(system=PLATFORM)
    assert post(kit, body).status_code == 201
    second = post(kit, body)
    assert 400 <= second.status_code < 500 and second.status_code == 409, second.text
    assert issues(second) == ["Practitioner.identifier"]
    assert len(holding(strict_vendor, PLATFORM, body["identifier"][0]["value"])) == 1


#: One required element of FrPractitionerRegul removed at a time (the kit's NO_IDENTIFIER, NO_NAME,
#: NO_TELECOM, NO_ACTIVE, and the profile's other 1..1 elements).
MISSING = {
    "identifier": (lambda b: b.pop("identifier"), "Practitioner.identifier"),
    "name": (lambda b: b.pop("name"), "Practitioner.name"),
    "telecom": (lambda b: b.pop("telecom"), "Practitioner.telecom"),
    "active": (lambda b: b.pop("active"), "Practitioner.active"),
    "name.given": (lambda b: b["name"][0].pop("given"), "Practitioner.name.given"),
    "name.family": (lambda b: b["name"][0].pop("family"), "Practitioner.name.family"),
    "meta.source": (lambda b: b["meta"].pop("source"), "Practitioner.meta.source"),
    "identifier.value": (lambda b: b["identifier"][0].pop("value"), "Practitioner.identifier.value"),
    "identifier.type": (lambda b: b["identifier"][0].pop("type"), "Practitioner.identifier.type"),
}


def without(body: dict, field: str) -> dict:
    body = copy.deepcopy(body)
    MISSING[field][0](body)
    return body


@pytest.mark.parametrize("field", sorted(MISSING))
def test_creation_regulateur_champs_manquants_test(kit, strict_vendor, field):
    body = regulator(system=RPPS)
    answer = post(kit, without(body, field))
    assert answer.status_code == 422, answer.text
    assert MISSING[field][1] in issues(answer)
    assert holding(strict_vendor, RPPS, body["identifier"][0]["value"]) == []


def _invalid(change):
    def apply(body: dict) -> dict:
        body = copy.deepcopy(body)
        change(body)
        return body
    return apply


#: Present but wrong values (the kit's EMPTY_NAME, EMPTY_MAIL, WRONG_TELECOM_SYSTEM,
#: WRONG_CODE_FOR_IDNPS_SYSTEM, WRONG_CODE_FOR_INTRN_SYSTEM, and the guide's other fixed values), each alone.
INVALID = {
    "empty_name": (_invalid(lambda b: b["name"][0].update(family="")), "Practitioner.name.family"),
    "empty_given": (_invalid(lambda b: b["name"][0].update(given=[""])), "Practitioner.name.given"),
    "two_given": (_invalid(lambda b: b["name"][0].update(given=["Sébastien", "Paul"])), "Practitioner.name.given"),
    "empty_mail": (_invalid(lambda b: b["telecom"][0].update(value="")), "Practitioner.telecom.value"),
    "not_a_mail": (_invalid(lambda b: b["telecom"][0].update(value="x + claire.@example")),
                   "Practitioner.telecom.value"),
    "wrong_telecom_system": (_invalid(lambda b: b["telecom"][0].update(system="phone")), "Practitioner.telecom.system"),
    "wrong_code_for_idnps_system": (_invalid(lambda b: b["identifier"][0]["type"]["coding"][0].update(code="INTRN")),
                                    "Practitioner.identifier.type"),
    "wrong_code_for_intrn_system": (_invalid(lambda b: b["identifier"][0].update(system=PLATFORM)),
                                    "Practitioner.identifier.type"),
    "wrong_type_system": (_invalid(lambda b: b["identifier"][0]["type"]["coding"][0].update(system="urn:x")),
                          "Practitioner.identifier.type"),
    "unknown_identifier_system": (_invalid(lambda b: b["identifier"][0].update(system="urn:oid:1.2.3")),
                                  "Practitioner.identifier.system"),
    "uuid_as_national_id": (_invalid(lambda b: b["identifier"][0].update(value=str(uuid.uuid4()))),
                            "Practitioner.identifier.value"),
    "two_identifiers": (_invalid(lambda b: b["identifier"].append(copy.deepcopy(b["identifier"][0]))),
                        "Practitioner.identifier"),
    "wrong_meta_source": (_invalid(lambda b: b["meta"].update(source="urn:oid:1.2.250.1.71.4.2.2")),
                          "Practitioner.meta.source"),
    "wrong_profile": (_invalid(lambda b: b["meta"].update(
        profile=["http://sas.fr/fhir/StructureDefinition/FrPractitionerRegul"])), "Practitioner.meta.profile"),
    "active_as_text": (_invalid(lambda b: b.update(active="true")), "Practitioner.active"),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_creation_regulateur_valeurs_invalides(kit, strict_vendor, case):
    body = regulator(system=RPPS)
    change, where = INVALID[case]
    answer = post(kit, change(body))
    assert answer.status_code == 422, answer.text
    assert where in issues(answer)
    assert holding(strict_vendor, RPPS, body["identifier"][0]["value"]) == []


def test_creation_of_something_else_than_a_practitioner_is_a_400(kit):
    assert post(kit, {"resourceType": "Patient"}).status_code == 400
    body = regulator()
    body["speciality"] = "none"                     # not an element of Practitioner
    assert post(kit, body).status_code == 400
    assert kit.post("Practitioner", content=b"{not json").status_code == 400


# -- modification -----------------------------------------------------------------------------------------------


def test_modification_deshabilitation(kit, strict_vendor):
    body = regulator(system=RPPS)
    resource_id = created(kit, body)["id"]
    answer = put(kit, key(body), {**body, "active": False})
    assert answer.status_code == 200, answer.text
    [stored] = holding(strict_vendor, RPPS, body["identifier"][0]["value"])
    assert stored["id"] == resource_id and stored["active"] is False


def test_modification_habilitation(kit, strict_vendor):
    body = regulator(system=RPPS, active=False)
    resource_id = created(kit, body)["id"]
    answer = put(kit, key(body), {**body, "active": True})
    assert answer.status_code == 200, answer.text
    [stored] = holding(strict_vendor, RPPS, body["identifier"][0]["value"])
    assert stored["id"] == resource_id and stored["active"] is True


def test_modification_email_regulateur_test(kit, strict_vendor):
    body = regulator(system=RPPS)
    created(kit, body)
    changed = copy.deepcopy(body)
    changed["telecom"][0]["value"] = "sebastien.loridon.modif@test.com"
    answer = put(kit, key(body), changed)
    assert answer.status_code == 200, answer.text
    [stored] = holding(strict_vendor, RPPS, body["identifier"][0]["value"])
    assert stored["telecom"] == [{"system": "email", "value": "sebastien.loridon.modif@test.com"}]


def test_modification_id_regulateur_test(kit, strict_vendor):
    body = regulator(system=RPPS)
    resource_id = created(kit, body)["id"]
    changed = regulator(system=RPPS, email=body["telecom"][0]["value"])
    answer = put(kit, key(body), changed)
    assert answer.status_code == 200, answer.text
    assert answer.json()["id"] == resource_id
    assert holding(strict_vendor, RPPS, body["identifier"][0]["value"]) == []
    [stored] = holding(strict_vendor, RPPS, changed["identifier"][0]["value"])
    assert stored["id"] == resource_id
    # Later updates use the new identifier and find the same account.
    assert put(kit, key(changed), {**changed, "active": False}).json()["id"] == resource_id


def test_modification_typeid_regulateur_test(kit, strict_vendor):
    """UUID → IDNPS, as the guide's FAQ writes it: ``PUT ?identifier=urn:oid:1.2.250.1.213.3.6|<uuid>`` with
    the national id in the body. (The kit's own request names the UUID under the RPPS system and sends an
    INTRN-typed body; its description and the FAQ say what is tested here.)"""
    body = regulator(system=PLATFORM)
    resource_id = created(kit, body)["id"]
    national = regulator(system=RPPS, email=body["telecom"][0]["value"])
    answer = put(kit, f"{PLATFORM}|{body['identifier'][0]['value']}", national)
    assert answer.status_code == 200, answer.text
    assert answer.json()["id"] == resource_id
    assert holding(strict_vendor, PLATFORM, body["identifier"][0]["value"]) == []
    [stored] = holding(strict_vendor, RPPS, national["identifier"][0]["value"])
    assert stored["id"] == resource_id and stored["identifier"][0]["type"]["coding"][0]["code"] == "IDNPS"


def test_modification_nom_regulateur_test(kit, strict_vendor):
    body = regulator(system=RPPS)
    created(kit, body)
    answer = put(kit, key(body), {**body, "name": [{"family": "Loridon-modif", "given": ["Sébastien"]}]})
    assert answer.status_code == 200, answer.text
    [stored] = holding(strict_vendor, RPPS, body["identifier"][0]["value"])
    assert stored["name"] == [{"family": "Loridon-modif", "given": ["Sébastien"]}]


def test_modification_prenom_regulateur_test(kit, strict_vendor):
    body = regulator(system=RPPS)
    created(kit, body)
    answer = put(kit, key(body), {**body, "name": [{"family": "Loridon", "given": ["Sébastien-modif"]}]})
    assert answer.status_code == 200, answer.text
    [stored] = holding(strict_vendor, RPPS, body["identifier"][0]["value"])
    assert stored["name"] == [{"family": "Loridon", "given": ["Sébastien-modif"]}]


@pytest.mark.parametrize("field", sorted(MISSING))
def test_modification_regulateur_champs_manquants_test(kit, strict_vendor, field):
    body = regulator(system=RPPS)
    created(kit, body)
    answer = put(kit, key(body), without(body, field))
    assert answer.status_code == 422, answer.text
    assert MISSING[field][1] in issues(answer)
    [stored] = holding(strict_vendor, RPPS, body["identifier"][0]["value"])
    assert stored["name"] == body["name"] and stored["telecom"] == body["telecom"] and stored["active"] is True


@pytest.mark.parametrize("field", sorted(MISSING))
def test_put_as_create_missing_fields_test(kit, strict_vendor, field):
    body = regulator(system=PLATFORM)
    answer = put(kit, key(body), without(body, field))
    assert answer.status_code == 422, answer.text
    assert holding(strict_vendor, PLATFORM, body["identifier"][0]["value"]) == []


def test_put_as_create(kit, strict_vendor):
    body = regulator(system=PLATFORM)
    answer = put(kit, key(body), body)
    assert answer.status_code == 201, answer.text
    resource_id = answer.json()["id"]
    assert answer.headers["Location"].endswith(f"/Practitioner/{resource_id}")
    again = put(kit, key(body), body)                           # idempotent: the same account, updated
    assert again.status_code == 200 and again.json()["id"] == resource_id
    assert len(holding(strict_vendor, PLATFORM, body["identifier"][0]["value"])) == 1


def test_idnps_reattribution_test(kit, strict_vendor):
    original = regulator(system=RPPS)
    first_id = created(kit, original)["id"]
    # 1. the original account is removed (deactivated): its IDNPS becomes available
    assert 200 <= put(kit, key(original), {**original, "active": False}).status_code < 300
    # 2. a new account with a fresh UUID
    newcomer = regulator(system=PLATFORM)
    second_id = created(kit, newcomer)["id"]
    # 3. the IDNPS is attached to the new account
    attached = {**original, "active": True, "name": newcomer["name"], "telecom": newcomer["telecom"]}
    answer = put(kit, key(newcomer), attached)
    assert answer.status_code == 200, answer.text
    assert answer.json()["id"] == second_id
    value = original["identifier"][0]["value"]
    by_id = {p["id"]: p for p in holding(strict_vendor, RPPS, value)}
    assert by_id[second_id]["active"] is True and by_id[first_id]["active"] is False
    # the IDNPS now names the new account
    assert put(kit, key(original), attached).json()["id"] == second_id


def test_idnps_of_an_active_account_is_not_given_to_another(kit, strict_vendor):
    """The other side of the re-attribution rule: one active account per identifier."""
    holder = regulator(system=RPPS)
    created(kit, holder)
    newcomer = regulator(system=PLATFORM)
    created(kit, newcomer)
    answer = put(kit, key(newcomer), {**holder, "name": newcomer["name"], "telecom": newcomer["telecom"]})
    assert answer.status_code == 409, answer.text
    assert len(holding(strict_vendor, PLATFORM, newcomer["identifier"][0]["value"])) == 1


# -- the interface itself ---------------------------------------------------------------------------------------


def test_no_delete(kit, strict_vendor):
    body = regulator(system=RPPS)
    created(kit, body)
    answer = kit.request("DELETE", "Practitioner", params={"identifier": key(body)})
    assert answer.status_code == 405 and answer.json()["resourceType"] == "OperationOutcome"
    assert holding(strict_vendor, RPPS, body["identifier"][0]["value"])[0]["active"] is True


@pytest.mark.parametrize("query", [None, "urn:oid:1.2.250.1.71.4.2.1", "urn:x|1", "|3456780581/1"])
def test_conditional_update_needs_a_known_identifier_system(kit, query):
    params = {"identifier": query} if query is not None else {}
    answer = kit.put("Practitioner", params=params, json=regulator())
    assert answer.status_code == 400 and answer.json()["resourceType"] == "OperationOutcome"


def test_mutual_tls_is_required(strict_vendor, pki):
    # plain HTTP: refused by the vendor; HTTPS without a client certificate: refused by the handshake
    plain = httpx.post(f"http://127.0.0.1:{strict_vendor.port}/certif/fhir/Practitioner", json=regulator(), timeout=10)
    assert plain.status_code == 403
    import ssl

    context = ssl.create_default_context()
    pki["ca"].configure_trust(context)
    with pytest.raises(httpx.HTTPError):
        httpx.post(fhir_base(strict_vendor) + "/Practitioner", json=regulator(), verify=context, timeout=10)
    assert admin(strict_vendor, "GET", "/_admin/healthz").status_code == 200
