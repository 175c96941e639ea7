"""INT_L01 contextual call: ``GET /recherche?origin=fr.health.samu330&streetnumber=…&streetname=…&inseecode=…
&city=…&specialty=…&practitioner=…`` (the names regulation software sends the national platform), or the
French names ``adresse``, ``code_postal``, ``ville``, ``specialite``, ``medecin_traitant``, ``samu``.

Answers the pre-filled search (what the operator's screen opens with) and its first results, with the
patient's own doctor first when he has slots. ``format=redirect`` answers a 303 to ``/v1/search`` with
the same parameters instead. An ``origin`` that is not a SAMU the platform knows gets a 400
(``unknown_origin``) and no search.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse

from sas_core.clock import utcnow
from search_api.auth import Principal, Role
from search_api.contextual_search import contextual_results
from search_api.deps import roles
from search_api.params import contextual_call
from search_api.services import SearchContextDep

router = APIRouter(tags=["INT_L01 (regulation software)"])
Operator = Annotated[Principal, Depends(roles(Role.REGULATOR, Role.OSNP, Role.ADMIN))]
Text = str | None


@router.get("/recherche", summary="INT_L01: open the search pre-filled from the regulation software")
def recherche(request: Request, principal: Operator, context: SearchContextDep,
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
    return {"prefill": prefill, **contextual_results(context, principal, call, now=utcnow(),
                                                     start=from_, end=to)}
