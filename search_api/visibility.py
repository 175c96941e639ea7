"""Which slot types a caller may see (TRE_R314 "type de créneau").

Vendors send every type they hold to the SAS precisely so that regulation can use them:

- regulators, OSNP (and administrators) see every type: ``PUBLIC``, ``PRO``, ``SNP``, ``CPTS``;
- practitioners (effecteurs) and CPTS coordinators see ``PUBLIC`` and ``PRO``, plus the ``CPTS`` slots
  offered through their own CPTS (token claim ``structure_id`` = the CPTS FINESS);
- integrator keys see ``PUBLIC``, plus the types their key is granted (claim ``slot_types``).

A caller with several roles sees the union. The result is a value object that the pure query builders
turn into a filter clause; nothing here talks to Elasticsearch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sas_core.structure_ids import finess_bare
from search_api.auth import Principal, Role
from search_api.query.defaults import SLOT_TYPES

_ALL = frozenset(SLOT_TYPES)
_PRACTITIONER = frozenset({"PUBLIC", "PRO"})
_PUBLIC = frozenset({"PUBLIC"})


@dataclass(frozen=True)
class SlotVisibility:
    """Slot types seen unconditionally, and CPTS whose ``CPTS``-type slots are also seen."""

    types: frozenset[str]
    cpts_finess: frozenset[str] = field(default_factory=frozenset)

    @property
    def sees_everything(self) -> bool:
        return self.types >= _ALL

    def allows(self, *, types: list[str] | tuple[str, ...], cpts_finess: list[str] | tuple[str, ...] = ()) -> bool:
        """Whether a slot with these types (offered through these CPTS) is visible."""
        if self.types.intersection(types):
            return True
        return "CPTS" in types and bool(self.cpts_finess.intersection(cpts_finess))

    def union(self, other: SlotVisibility) -> SlotVisibility:
        return SlotVisibility(types=self.types | other.types, cpts_finess=self.cpts_finess | other.cpts_finess)


NOTHING = SlotVisibility(types=frozenset())


def visibility_for(principal: Principal) -> SlotVisibility:
    """The slot visibility of ``principal`` (union over its roles)."""
    result = NOTHING
    if principal.has_any(Role.REGULATOR, Role.OSNP, Role.ADMIN):
        result = result.union(SlotVisibility(types=_ALL))
    if principal.has_any(Role.EFFECTEUR, Role.STRUCTURE_MANAGER):
        # Slots hold the directory's FINESS (``cpts.finess``); the claim may be given as ``1`` + FINESS.
        claim = finess_bare(principal.structure_id)
        own = frozenset({claim}) if claim else frozenset()
        result = result.union(SlotVisibility(types=_PRACTITIONER, cpts_finess=own))
    if principal.has_any(Role.INTEGRATOR):
        granted = frozenset(t for t in principal.slot_types if t in _ALL)
        result = result.union(SlotVisibility(types=_PUBLIC | granted))
    return result


def sees_cpts_members(principal: Principal, finess: str | None) -> bool:
    """Whether ``principal`` may see the member list of the CPTS ``finess``: every search role does, except a
    structure manager with no other search role, who sees his own structure's members only (claim
    ``structure_id``, the CPTS FINESS, optionally prefixed with ``1``)."""
    other_roles = principal.roles - {Role.STRUCTURE_MANAGER}
    if Role.STRUCTURE_MANAGER not in principal.roles or other_roles:
        return True
    claim = (principal.structure_id or "").strip()
    if len(claim) == 10 and claim.startswith("1"):
        claim = claim[1:]
    return bool(claim) and claim == (finess or "")
