"""Who sees which orientations and declarations: a value object built from the caller's token.

- administrators see everything;
- regulators, OSNP and account managers see their territories (the SAS they work for);
- effecteurs see what concerns their own national id (token claim ``national_id``);
- structure managers (CPTS coordinators) see the orientations made through their structure (token claim
  ``structure_id``, the CPTS FINESS; orientations carry ``structure.id`` = ``1`` + FINESS), i.e. those of
  their members; they have no territorial view.

A caller with several roles sees the union. Query builders turn a ``Scope`` into a filter clause.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sas_core.errors import Forbidden
from sas_core.structure_ids import finess_wire
from search_api.auth import Principal, Role


@dataclass(frozen=True)
class Scope:
    everything: bool = False
    territories: frozenset[str] = frozenset()
    national_id: str | None = None
    #: ``structure.id`` values of the orientations a structure manager sees (``1`` + FINESS).
    structure_ids: frozenset[str] = frozenset()
    #: Who reads (for the audit log of orientation reads); never part of what the scope lets one see.
    viewer: Principal | None = field(default=None, compare=False, repr=False)

    @property
    def empty(self) -> bool:
        return not (self.everything or self.territories or self.national_id or self.structure_ids)


def structure_ids_of(structure_id: str | None) -> frozenset[str]:
    """National structure ids of a ``structure_id`` claim: the FINESS prefixed with ``1`` (as orientations
    store it); a claim already given in that prefixed form is accepted as is."""
    wire = finess_wire(structure_id)
    return frozenset({wire}) if wire else frozenset()


def scope_for(principal: Principal) -> Scope:
    """The reading scope of ``principal``; ``Forbidden`` when it would see nothing."""
    if principal.has_any(Role.ADMIN):
        return Scope(everything=True, viewer=principal)
    territories: frozenset[str] = frozenset()
    if principal.has_any(Role.REGULATOR, Role.OSNP, Role.ACCOUNT_MANAGER):
        territories = principal.territories
    national_id = principal.national_id if principal.has_any(Role.EFFECTEUR) else None
    structures = structure_ids_of(principal.structure_id) if principal.has_any(Role.STRUCTURE_MANAGER) else frozenset()
    scope = Scope(territories=territories, national_id=national_id, structure_ids=structures, viewer=principal)
    if scope.empty:
        raise Forbidden("this account sees no orientation: no territory (regulators), national id (effecteurs) "
                        "nor structure (structure managers)")
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
    if scope.structure_ids:
        should.append({"terms": {"structure.id": sorted(scope.structure_ids)}})
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
    if not should:
        # A structure manager alone has no declaration scope: nothing rather than an empty ``should``.
        return {"match_none": {}}
    return {"bool": {"should": should, "minimum_should_match": 1}}


def sees_orientation(scope: Scope, doc: dict) -> bool:
    """Whether one orientation document is within ``scope`` (same rule as the filter)."""
    if scope.everything:
        return True
    if doc.get("territory") in scope.territories:
        return True
    if scope.structure_ids and (doc.get("structure") or {}).get("id") in scope.structure_ids:
        return True
    return bool(scope.national_id) and (doc.get("effecteur") or {}).get("national_id") == scope.national_id
