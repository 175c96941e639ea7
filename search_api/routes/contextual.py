"""INT_L01 contextual call: ``GET /recherche?adresse=…&code_postal=…&ville=…&specialite=…&medecin_traitant=…&samu=…``.

Answers the pre-filled search (what the operator's screen opens with) and its first results, with the
patient's own doctor first when he has slots. ``format=redirect`` answers a 303 to ``/v1/search`` with
the same parameters instead (the web UI, a later issue, will render it).
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse

from search_api.auth import Principal, Role
from search_api.deps import roles
from search_api.routes.search import SearchContext, build_slot_query, get_context
from search_api.workflow.contextual import ContextualCall, own_doctor_first, parse_contextual

router = APIRouter(tags=["INT_L01 (regulation software)"])
Operator = Annotated[Principal, Depends(roles(Role.REGULATOR, Role.OSNP, Role.ADMIN))]


def contextual_results(context: SearchContext, principal: Principal, call: ContextualCall, *,
                       now: datetime, start: str | None = None, end: str | None = None) -> dict[str, Any]:
    """Run the pre-filled search; the own doctor's cards first when he has slots (reusable by the UI).
    ``start`` / ``end``: the search window (default: the search's own, now → 48 h)."""
    query = build_slot_query(context, principal, now=now, lat=None, lon=None, q=call.q, insee=None, radius_km=None,
                             specialty=list(call.specialties) or None, start=start, end=end, within=None, modes=None,
                             kinds=None, sector=None, bookable_only=False, sort="balanced", page=1, size=20, slots=3,
                             explain=False)
    answer = context.service.search(query)
    own = None
    if call.own_doctor:
        offers = context.service.executor.search_checked(index="offers", body={
            "size": 20, "_source": ["id", "name"], "query": {"term": {"national_id": call.own_doctor}}})
        ids = {h["_source"]["id"] for h in offers["hits"]["hits"]}
        own_cards: list[dict] = []
        if ids and not any((c.get("offer") or {}).get("id") in ids for c in answer["results"]):
            own_query = dataclasses.replace(query, offer_ids=tuple(sorted(ids)), radius_km=200.0,
                                            specialties=())
            own_cards = context.service.search(own_query, with_beyond=False)["results"]
        answer["results"] = own_doctor_first(answer["results"], ids, own_cards)
        first = answer["results"][0] if answer["results"] else None
        own = {"national_id": call.own_doctor, "known": bool(ids),
               "has_slots": bool(first and first.get("own_doctor") and first.get("slots"))}
    return {"own_doctor": own, **answer}


@router.get("/recherche", summary="INT_L01: open the search pre-filled from the regulation software")
def recherche(request: Request, principal: Operator, context: Annotated[SearchContext, Depends(get_context)],
              format: Annotated[str, Query(pattern="^(json|redirect)$")] = "json",
              from_: Annotated[str | None, Query(alias="from", description="Window start (default now)")] = None,
              to: Annotated[str | None, Query(description="Window end (default from + 48 h)")] = None) -> Any:
    call = parse_contextual(dict(request.query_params))
    prefill = {"address": call.address, "postcode": call.postcode, "city": call.city,
               "specialties": list(call.specialties), "own_doctor": call.own_doctor, "samu": call.samu,
               "territory": call.territory, "search_parameters": call.search_parameters()}
    if format == "redirect":
        return RedirectResponse("/v1/search?" + urlencode(call.search_parameters(), doseq=True), status_code=303)
    return {"prefill": prefill, **contextual_results(context, principal, call, now=datetime.now(timezone.utc),
                                                     start=from_, end=to)}
