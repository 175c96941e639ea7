"""Pure rules of issue 7: the structure manager's scope, who sees a CPTS's members, bounded dates."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from sas_core.errors import BadRequest, Forbidden
from search_api.auth import Principal, Role
from search_api.validation import check_moment
from search_api.visibility import sees_cpts_members
from search_api.workflow.scope import (
    Scope,
    declaration_scope_filter,
    orientation_scope_filter,
    scope_for,
    sees_orientation,
)


def principal(*roles: Role, **claims) -> Principal:
    return Principal(sub="u", roles=frozenset(roles), **claims)


def test_structure_manager_scope_is_his_structure():
    scope = scope_for(principal(Role.STRUCTURE_MANAGER, structure_id="920099901", territories=frozenset({"SAS-92"})))
    assert scope == Scope(structure_ids=frozenset({"1920099901"}))  # no territorial view
    assert orientation_scope_filter(scope) == {"bool": {"should": [{"terms": {"structure.id": ["1920099901"]}}],
                                                        "minimum_should_match": 1}}
    assert declaration_scope_filter(scope) == {"match_none": {}}
    assert sees_orientation(scope, {"structure": {"id": "1920099901"}, "territory": "SAS-47"})
    assert not sees_orientation(scope, {"structure": {"id": "1470099902"}, "territory": "SAS-92"})
    # the prefixed form of the claim is accepted as is
    assert scope_for(principal(Role.STRUCTURE_MANAGER, structure_id="1920099901")).structure_ids == {"1920099901"}
    with pytest.raises(Forbidden):
        scope_for(principal(Role.STRUCTURE_MANAGER))


def test_viewer_is_carried_but_does_not_change_the_scope():
    reader = principal(Role.REGULATOR, territories=frozenset({"SAS-92"}))
    scope = scope_for(reader)
    assert scope.viewer is reader and scope == Scope(territories=frozenset({"SAS-92"}))


def test_who_sees_cpts_members():
    manager = principal(Role.STRUCTURE_MANAGER, structure_id="920099901")
    assert sees_cpts_members(manager, "920099901")
    assert not sees_cpts_members(manager, "470099902")
    assert not sees_cpts_members(manager, None)
    assert not sees_cpts_members(principal(Role.STRUCTURE_MANAGER), "920099901")
    assert sees_cpts_members(principal(Role.STRUCTURE_MANAGER, structure_id="1920099901"), "920099901")
    for other in (Role.REGULATOR, Role.OSNP, Role.EFFECTEUR, Role.ADMIN, Role.INTEGRATOR):
        assert sees_cpts_members(principal(other), "470099902")
        assert sees_cpts_members(principal(other, Role.STRUCTURE_MANAGER, structure_id="920099901"), "470099902")


@pytest.mark.parametrize("year,ok", [(1899, False), (1900, True), (2026, True), (2200, True), (2201, False),
                                     (9999, False), (1, False)])
def test_dates_are_bounded(year, ok):
    moment = datetime(year, 6, 1, tzinfo=timezone.utc)
    if ok:
        assert check_moment(moment, name="from") is moment
    else:
        with pytest.raises(BadRequest, match="between years 1900 and 2200"):
            check_moment(moment, name="from")
