"""Who sees which orientations and declarations: a value object built from the caller's token.

- administrators see everything;
- regulators, OSNP and account managers see their territories (the SAS they work for);
- effecteurs see what concerns their own national id (token claim ``national_id``).

A caller with several roles sees the union. Query builders turn a ``Scope`` into a filter clause.
"""

from __future__ import annotations

from dataclasses import dataclass

from sas_core.errors import Forbidden
from search_api.auth import Principal, Role


@dataclass(frozen=True)
class Scope:
    everything: bool = False
    territories: frozenset[str] = frozenset()
    national_id: str | None = None

    @property
    def empty(self) -> bool:
        return not (self.everything or self.territories or self.national_id)


def scope_for(principal: Principal) -> Scope:
    """The reading scope of ``principal``; ``Forbidden`` when it would see nothing."""
    if principal.has_any(Role.ADMIN):
        return Scope(everything=True)
    territories: frozenset[str] = frozenset()
    if principal.has_any(Role.REGULATOR, Role.OSNP, Role.ACCOUNT_MANAGER):
        territories = principal.territories
    national_id = principal.national_id if principal.has_any(Role.EFFECTEUR) else None
    scope = Scope(territories=territories, national_id=national_id)
    if scope.empty:
        raise Forbidden("this account sees no orientation: no territory (regulators) nor national id (effecteurs)")
    return scope


def orientation_scope_filter(scope: Scope) -> dict | None:
    """Filter clause restricting orientations to ``scope`` (``None``: no restriction)."""
    if scope.everything:
        return None
    should: list[dict] = []
    if scope.territories:
        should.append({"terms": {"territory": sorted(scope.territories)}})
    if scope.national_id:
        should.append({"term": {"effecteur.national_id": scope.national_id}})
    return {"bool": {"should": should, "minimum_should_match": 1}}


def declaration_scope_filter(scope: Scope) -> dict | None:
    """Filter clause restricting declarations to ``scope`` (``None``: no restriction)."""
    if scope.everything:
        return None
    should: list[dict] = []
    if scope.territories:
        should.append({"terms": {"territory": sorted(scope.territories)}})
    if scope.national_id:
        should.append({"term": {"subject_national_id": scope.national_id}})
    return {"bool": {"should": should, "minimum_should_match": 1}}


def sees_orientation(scope: Scope, doc: dict) -> bool:
    """Whether one orientation document is within ``scope`` (same rule as the filter)."""
    if scope.everything:
        return True
    if doc.get("territory") in scope.territories:
        return True
    return bool(scope.national_id) and (doc.get("effecteur") or {}).get("national_id") == scope.national_id
