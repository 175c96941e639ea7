"""Structure ids: the directory's bare FINESS / SIRET and the guide's wire form (``1`` + FINESS, ``3`` +
SIRET), converted idempotently so that nothing is ever prefixed twice."""

from __future__ import annotations

import pytest

from sas_core.structure_ids import FINESS_WIRE_RE, SIRET_WIRE_RE, finess_bare, finess_wire, siret_bare, siret_wire
from search_api.auth import Principal, Role
from search_api.visibility import visibility_for


@pytest.mark.parametrize("value", ["950047225", "1950047225"])
def test_finess_forms(value):
    assert finess_wire(value) == "1950047225" and FINESS_WIRE_RE.match(finess_wire(value))
    assert finess_bare(value) == "950047225"
    assert finess_wire(finess_wire(value)) == "1950047225"          # never 11950047225


@pytest.mark.parametrize("value", ["34173748400020", "334173748400020", " 34173748400020 "])
def test_siret_forms(value):
    assert siret_wire(value) == "334173748400020" and SIRET_WIRE_RE.match(siret_wire(value))
    assert siret_bare(value) == "34173748400020"
    assert siret_wire(siret_wire(value)) == "334173748400020"


def test_empty_ids_stay_empty():
    assert (finess_wire(None) is None and siret_wire("") is None
            and finess_bare(" ") is None and siret_bare(None) is None)


@pytest.mark.parametrize("claim", ["470000011", "1470000011"])
def test_a_cpts_claim_in_either_form_sees_its_cpts_slots(claim):
    principal = Principal(sub="coord", roles=frozenset({Role.STRUCTURE_MANAGER}), territories=frozenset(),
                          structure_id=claim)
    visibility = visibility_for(principal)
    assert visibility.cpts_finess == frozenset({"470000011"})       # what harvested slots hold
    assert visibility.allows(types=["CPTS"], cpts_finess=["470000011"])
