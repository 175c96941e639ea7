"""INT_R02 pure rules: completeness of an account against FrPractitionerRegul, the canonical profile, the
list query of account managers, the French sentence of the accounts page, and the simulator's profile check
applied to the guide's four examples."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connectors.vendors_accounts import (
    PROFILE,
    AccountSyncError,
    missing_elements,
    practitioner_resource,
)
from search_api.web.pages.accounts import missing_sentence
from search_api.workflow.accounts import managed_accounts_body
from simulator.accounts import check_practitioner

FIXTURES = Path(__file__).resolve().parents[2] / "conformance" / "regulator_accounts" / "fixtures"


def test_profile_is_the_guides_canonical_url():
    # sushi-config.yaml: canonical https://interop.esante.gouv.fr/ig/fhir/sas; profile id FrPractitionerRegul
    assert PROFILE == "https://interop.esante.gouv.fr/ig/fhir/sas/StructureDefinition/FrPractitionerRegul"
    assert practitioner_resource({"id": "x", "family_name": "A"})["meta"]["profile"] == [PROFILE]


@pytest.mark.parametrize(("account", "missing"), [
    ({"family_name": "DUPUY", "given_name": "Claire", "email": "c@test.fr"}, []),
    ({"family_name": "DUPUY", "email": "c@test.fr"}, ["name.given"]),
    ({"family_name": "DUPUY", "given_name": " ", "email": None}, ["name.given", "telecom.email"]),
    ({"family_name": "", "given_name": "Claire", "email": "c@test.fr"}, ["name.family"]),
])
def test_missing_elements(account, missing):
    assert missing_elements(account) == missing


def test_refusals_are_400_and_422_only():
    assert AccountSyncError("http_422", "x", status=422).refused
    assert AccountSyncError("http_400", "x", status=400).refused
    assert not any(AccountSyncError("e", "x", status=s).refused for s in (401, 403, 404, 409, 429, 500, 503, None))


def test_managed_accounts_body():
    assert managed_accounts_body(territories=["SAS-33"], blocked=True, size=50) == {
        "size": 50, "sort": [{"family_name": "asc"}, {"id": "asc"}],
        "query": {"bool": {"filter": [{"terms": {"territories": ["SAS-33"]}}, {"exists": {"field": "sync_missing"}}],
                           "must_not": [{"exists": {"field": "removed_at"}}]}}}
    assert managed_accounts_body(territories=None, blocked=False, size=1)["query"]["bool"]["filter"] == []


def test_missing_sentence_in_french():
    assert missing_sentence(["telecom.email"]).startswith(
        "Non transmis aux éditeurs : il manque l’adresse e-mail (le profil FrPractitionerRegul l’exige).")
    assert "il manque le prénom et l’adresse e-mail (le profil FrPractitionerRegul les exige)" in missing_sentence(
        ["name.given", "telecom.email"])


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_the_guides_examples_pass_the_simulators_profile_check(n):
    body = json.loads((FIXTURES / f"practitioner-regul{n}.json").read_text(encoding="utf-8"))
    assert check_practitioner(body) == (body["identifier"][0]["system"], body["identifier"][0]["value"])
