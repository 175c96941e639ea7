"""INT_L01 contextual call: ``GET /recherche?origin=fr.health.samu330&streetnumber=…&streetname=…&inseecode=…
&city=…&specialty=…&practitioner=…`` (the names regulation software sends the national platform), or the
French names ``adresse``, ``code_postal``, ``ville``, ``specialite``, ``medecin_traitant``, ``samu``.

Answers the pre-filled search (what the operator's screen opens with) and its first results, with the
patient's own doctor first when he has slots. ``format=redirect`` answers a 303 to ``/v1/search`` with
the same parameters instead. An ``origin`` that is not a SAMU the platform knows gets a 400
(``unknown_origin``) and no search.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse

from sas_core.territories import known_samu_ids
from search_api.auth import Principal, Role
from search_api.deps import roles
from search_api.routes.search import SearchContext, build_slot_query, get_context
from search_api.workflow.contextual import ContextualCall, contextual_parameters, own_doctor_first, parse_contextual

router = APIRouter(tags=["INT_L01 (regulation software)"])
Operator = Annotated[Principal, Depends(roles(Role.REGULATOR, Role.OSNP, Role.ADMIN))]
Text = str | None


def accepted_origins(context: SearchContext) -> dict[str, str]:
    """The SAMU ids accepted as ``origin`` → territory: ``SAS_CONTEXTUAL_ORIGINS`` when set (ids of
    départements the platform knows), else every département's SAMU."""
    known = known_samu_ids()
    chosen = context.settings.contextual_origins
    if not chosen:
        return known
    return {samu: territory for samu, territory in known.items() if samu in set(chosen)}


def contextual_call(context: SearchContext, request: Request) -> ContextualCall:
    """The request's INT_L01 parameters checked against the gazetteer, TRE_R38 and the known SAMU."""
    return parse_contextual(contextual_parameters(request.query_params.multi_items()),
                            communes=context.places.gazetteer.by_insee, specialties=context.specialties,
                            origins=accepted_origins(context))


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
              to: Annotated[str | None, Query(description="Window end (default from + 48 h)")] = None,
              # Declared for the published schema (and the fuzzer); read with their aliases by parse_contextual.
              origin: Annotated[Text, Query(description="Calling SAMU's Hub Santé id (fr.health.samu330); "
                                                        "unknown → 400 unknown_origin")] = None,
              streetnumber: Annotated[Text, Query(description="Street number (12, 12 bis)")] = None,
              streetname: Annotated[Text, Query(description="Street name (needed with streetnumber)")] = None,
              inseecode: Annotated[Text, Query(description="INSEE commune code: the commune's name and "
                                                           "postcode come from it")] = None,
              city: Annotated[Text, Query(description="Commune (when no inseecode); alias ville")] = None,
              specialty: Annotated[Text, Query(description="Label, TRE_R38 code or urn:oid:<oid>|<code>; "
                                                           "alias specialite")] = None,
              practitioner: Annotated[Text, Query(description="Patient's own doctor, urn:oid:1.2.250.1.71.4.2.1|"
                                                              "8<RPPS>; alias medecin_traitant")] = None,
              adresse: Annotated[Text, Query(description="Street line (French name)")] = None,
              code_postal: Annotated[Text, Query(description="Postcode (French name)")] = None,
              ville: Annotated[Text, Query(description="Commune (French name)")] = None,
              specialite: Annotated[Text, Query(description="Specialty (French name)")] = None,
              medecin_traitant: Annotated[Text, Query(description="Own doctor, 8 + RPPS (French name)")] = None,
              samu: Annotated[Text, Query(description="SAMU code, 330 or fr.health.samu330")] = None) -> Any:
    call = contextual_call(context, request)
    prefill = {"address": call.address, "postcode": call.postcode, "city": call.city, "insee": call.insee,
               "specialties": list(call.specialties), "own_doctor": call.own_doctor, "samu": call.samu,
               "origin": call.origin, "territory": call.territory, "warnings": list(call.warnings),
               "search_parameters": call.search_parameters()}
    if format == "redirect":
        return RedirectResponse("/v1/search?" + urlencode(call.search_parameters(), doseq=True), status_code=303)
    return {"prefill": prefill, **contextual_results(context, principal, call, now=datetime.now(timezone.utc),
                                                     start=from_, end=to)}
