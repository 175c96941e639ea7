"""Small pure helpers shared by the workflow services."""

from __future__ import annotations

import hashlib
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sas_core.errors import BadRequest, Forbidden
from search_api.auth import Principal, Role

#: Offer kind → orientation category.
KIND_CATEGORY = {"ps": "PS", "cpts": "CPTS", "sos": "SOS", "centre": "CDS", "msp": "MSP"}


def idempotent_id(principal_sub: str, key: str) -> str:
    """The orientation id of a booking: the same caller retrying with the same key gets the same id."""
    return hashlib.sha256(f"{principal_sub}\x1f{key}".encode()).hexdigest()[:32]


def report_id(vendor: str, system: str, value: str) -> str:
    """The orientation id of an appointment reported by a vendor without a platform booking."""
    return "r" + hashlib.sha256(f"{vendor}\x1f{system}\x1f{value}".encode()).hexdigest()[:31]


def category_for_slot(slot: dict) -> str:
    """The orientation category of a slot: SOS, CPTS (offered through a CPTS), centre, MSP, else PS."""
    if slot.get("use_case") == "sos" or slot.get("sos") or slot.get("offer_kind") == "sos":
        return "SOS"
    if slot.get("offer_kind") in ("cpts",) or (slot.get("use_case") == "cpts" and slot.get("cpts")):
        return "CPTS"
    return KIND_CATEGORY.get(slot.get("offer_kind") or "ps", "PS")


def with_origin_sas(url: str) -> str:
    """The vendor's booking URL with ``origin=sas`` (replacing any ``origin`` already there)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "origin"]
    query.append(("origin", "sas"))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def acting_territory(principal: Principal, *, requested: str | None, fallback: str | None) -> str | None:
    """The SAS territory an orientation is made for.

    ``requested`` must be one of the caller's territories; without it, the practice place's territory
    when the caller covers it, else the caller's only territory. Administrators may act for any.
    """
    mine = principal.territories
    admin = principal.has_any(Role.ADMIN)
    if requested:
        if not admin and requested not in mine:
            raise Forbidden(f"you do not work for {requested}")
        return requested
    if fallback and (admin or fallback in mine):
        return fallback
    if len(mine) == 1:
        return next(iter(mine))
    if not mine:
        return fallback
    raise BadRequest(f"you work for several territories ({', '.join(sorted(mine))}): say which one in 'territory'")
