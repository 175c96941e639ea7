"""What the page modules share: who may see which page, the search's time-window chips, small helpers."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Annotated

from fastapi import Depends, Query, Request

from sas_core.errors import BadRequest
from search_api.auth import Principal, Role
from search_api.query import defaults
from search_api.services import SearchContext, SearchContextDep
from search_api.validation import check_moment
from search_api.web import format as fmt
from search_api.web.session import WebUser, page_roles

SEARCHERS = (Role.OSNP, Role.REGULATOR, Role.EFFECTEUR, Role.STRUCTURE_MANAGER, Role.ADMIN)
BOOKERS = (Role.REGULATOR, Role.OSNP, Role.ADMIN)
VIEWERS = (Role.REGULATOR, Role.OSNP, Role.ACCOUNT_MANAGER, Role.ADMIN)
Searcher = Annotated[WebUser, Depends(page_roles(*SEARCHERS))]
Booker = Annotated[WebUser, Depends(page_roles(*BOOKERS))]
Viewer = Annotated[WebUser, Depends(page_roles(*VIEWERS))]
Admin = Annotated[WebUser, Depends(page_roles(Role.ADMIN))]
Practitioner = Annotated[WebUser, Depends(page_roles(Role.EFFECTEUR))]
Context = SearchContextDep
Multi = Annotated[list[str] | None, Query()]

#: Time-window chips: value → label. Empty value: the search's default (now → 48 h).
WINDOW_CHIPS = [("", "48 prochaines heures"), ("aujourdhui", "Aujourd'hui"), ("prochains-jours", "Prochains jours"),
                ("0-4h", "Dans 0-4 h"), ("4-8h", "Dans 4-8 h"), ("8-12h", "Dans 8-12 h"), ("12-24h", "Dans 12-24 h"),
                ("24-48h", "Dans 24-48 h")]
COMMON_SPECIALTIES = ("SM54", "SM26", "SM53")
PAGE_SIZE = 25


def is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"


def safe_next(value: str | None) -> str:
    """Only local paths (no open redirect)."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/app/recherche"


def window_bounds(chip: str, *, now: datetime) -> tuple[str | None, str | None, str | None]:
    """(from, to, within) of a time-window chip."""
    if chip == "aujourdhui":
        end = datetime.combine(now.astimezone(fmt.PARIS).date() + timedelta(days=1), time(0), tzinfo=fmt.PARIS)
        return None, end.isoformat(), None
    if chip == "prochains-jours":
        return None, (now + timedelta(days=7)).isoformat(), None
    if chip in defaults.WITHIN_BUCKETS_H:
        return None, None, chip
    if chip:
        raise BadRequest(f"fenêtre inconnue « {chip[:20]} » : choisissez une fenêtre dans la liste")
    return None, None, None


def territory_choice(principal: Principal, requested: str | None) -> str | None:
    if requested and requested in principal.territories:
        return requested
    return sorted(principal.territories)[0] if len(principal.territories) == 1 else None


def specialty_options(context: SearchContext) -> list[tuple[str, str]]:
    """The specialty select's options: all general practice, the three general-practice codes, then every
    other TRE_R38 specialty by label (a few hundred: built per page, from the labels loaded at start-up)."""
    labels = context.specialties.labels
    common = [(c, labels[c]) for c in COMMON_SPECIALTIES if c in labels]
    rest = sorted(((c, label) for c, label in labels.items() if c not in COMMON_SPECIALTIES), key=lambda cl: cl[1])
    return [("médecine générale", "Médecine générale (toutes)")] + common + rest


def day_after(day: str) -> str:
    """``YYYY-MM-DD`` of the day after ``day`` (400, not 500, on an invalid or out-of-range date)."""
    try:
        moment = datetime.fromisoformat(day)
    except ValueError:
        raise BadRequest(f"date invalide « {day[:20]} » : saisissez-la au format JJ/MM/AAAA") from None
    return (check_moment(moment, name="la date") + timedelta(days=1)).date().isoformat()
