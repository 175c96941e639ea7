"""The practitioner's space: his places, own agenda, orientations, unavailability, participation."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from sas_core.clock import utcnow
from sas_core.errors import BadRequest, SasError
from sas_core.structure_ids import finess_bare
from search_api.auth import Principal
from search_api.params import filters_from
from search_api.query import defaults
from search_api.schemas.agenda import AgendaItem, AgendaPublish
from search_api.services import ServicesDep, WorkflowDep
from search_api.validation import check_moment
from search_api.web import format as fmt
from search_api.web import messages
from search_api.web.pages.common import Practitioner
from search_api.web.render import render
from search_api.web.session import check_csrf
from search_api.workflow.declarations import PeriodIn
from search_api.workflow.queries import FINESS_RE, DeclarationFilters, cpts_offer_body, practitioner_places_body
from search_api.workflow.scope import scope_for

router = APIRouter(include_in_schema=False)


# --- Practitioner space ---------------------------------------------------------------------------------------


def _my_offers(request: Request, principal: Principal) -> list[dict]:
    if not principal.national_id:
        return []
    body = practitioner_places_body(national_id=principal.national_id)
    answer = request.app.state.services.executor.search(index="offers", body=body)
    return [hit["_source"] for hit in answer["hits"]["hits"]]


@router.get("/app/espace", response_class=HTMLResponse)
def practitioner_page(request: Request, user: Practitioner, services: ServicesDep, message: str | None = None,
                      erreur: str | None = None) -> Response:
    principal = user.principal
    workflow = services.workflow
    offers = _my_offers(request, principal)
    agendas = {}
    for offer in offers:
        if not (offer.get("sas") or {}).get("vendor"):
            agendas[offer["id"]] = services.agenda.list_slots(principal, offer["id"], None,
                                                              utcnow() + timedelta(days=8))
    _, orientations = workflow.orientations.list(
        scope_for(principal), filters_from(territory=None, from_=None, to=None, period="created", status=None,
                                           effecteur=None, category=None, source=None), page=1, size=50)
    _, unavailability = workflow.declarations.list(
        scope_for(principal), DeclarationFilters(kinds=("unavailable",), active=True,
                                                 national_id=principal.national_id), page=1, size=50)
    return render(request, "practitioner.html", user=user, offers=offers, agendas=agendas, orientations=orientations,
                  unavailability=unavailability, message=message, error=erreur,
                  today=datetime.now(fmt.PARIS).date().isoformat())


def _back(message: str | None = None, error: str | None = None, anchor: str = "") -> RedirectResponse:
    query = urlencode({k: v for k, v in (("message", message), ("erreur", error)) if v})
    return RedirectResponse(f"/app/espace{'?' + query if query else ''}{anchor}", status_code=303)


@router.post("/app/espace/orientations/{orientation_id}/honoree")
async def honour(request: Request, orientation_id: str, user: Practitioner, workflow: WorkflowDep) -> Response:
    await check_csrf(request, user)
    try:
        await run_in_threadpool(workflow.honour, orientation_id, user.principal)
    except SasError as exc:
        return _back(error=messages.french(exc), anchor="#orientations")
    return _back("Consultation marquée comme honorée.", anchor="#orientations")


def _local_moment(day: str, hour: str) -> datetime:
    try:
        moment = datetime.combine(datetime.fromisoformat(day).date(), time.fromisoformat(hour), tzinfo=fmt.PARIS)
    except ValueError:
        raise BadRequest("date ou heure invalide : saisissez la date (JJ/MM/AAAA) et l'heure (HH:MM)") from None
    # Bounded years, or adding a day to 9999-12-31 overflows (a 500 instead of a clear message).
    return check_moment(moment, name="la date")


#: Form labels of the agenda form's fields (``AgendaItem``), for the French validation messages.
SLOT_FIELDS = {"start": "Début", "end": "Fin", "capacity": "Capacité", "modes": "Modes de consultation",
               "types": "Publics", "motive": "Motif", "offer_id": "Lieu d'exercice", "items": "Créneau"}


@router.post("/app/espace/agenda")
async def publish_slot(request: Request, user: Practitioner, services: ServicesDep) -> Response:
    await check_csrf(request, user)
    form = await request.form()
    try:
        day = str(form.get("date") or "")
        start, end = _local_moment(day, str(form.get("debut") or "")), _local_moment(day, str(form.get("fin") or ""))
        capacity = str(form.get("capacite") or "").strip()
        modes = [m for m in form.getlist("modes") if m in defaults.MODES] or ["AMB"]
        item = AgendaItem(start=start, end=end, capacity=int(capacity) if capacity else None, modes=modes,
                          types=["SNP"])
        await run_in_threadpool(services.agenda.publish,
                                AgendaPublish(offer_id=str(form.get("offer_id") or ""), items=[item]), user.principal)
    except SasError as exc:
        return _back(error=messages.french(exc), anchor="#agenda")
    except ValidationError as exc:
        # A doctor reads which field to correct, in French (never pydantic's report).
        return _back(error=messages.validation_message(exc, labels=SLOT_FIELDS, subject="Créneau non publié"),
                     anchor="#agenda")
    except ValueError:
        return _back(error="Créneau non publié : la capacité est un nombre entier de patients (1 à 100).",
                     anchor="#agenda")
    return _back("Créneau publié : il apparaît dans la recherche.", anchor="#agenda")


@router.post("/app/espace/agenda/{slot_id}/supprimer")
async def delete_slot(request: Request, slot_id: str, user: Practitioner, services: ServicesDep) -> Response:
    await check_csrf(request, user)
    try:
        await run_in_threadpool(services.agenda.delete_slot, slot_id, user.principal)
    except SasError as exc:
        return _back(error=messages.french(exc), anchor="#agenda")
    return _back("Créneau supprimé.", anchor="#agenda")


@router.post("/app/espace/indisponibilites")
async def declare_unavailability(request: Request, user: Practitioner, workflow: WorkflowDep) -> Response:
    await check_csrf(request, user)
    form = await request.form()
    try:
        start = _local_moment(str(form.get("du") or ""), "00:00")
        end = None if form.get("indefinie") else _local_moment(str(form.get("au") or ""), "00:00") + timedelta(days=1)
        await run_in_threadpool(
            workflow.declarations.declare_unavailability, user.principal,
            offer_id=str(form.get("offer_id") or "") or None, periods=[PeriodIn(start, end)],
            comment=str(form.get("comment") or "")[:500] or None)
    except SasError as exc:
        return _back(error=messages.french(exc), anchor="#indisponibilites")
    return _back("Indisponibilité enregistrée.", anchor="#indisponibilites")


@router.post("/app/espace/indisponibilites/{declaration_id}/annuler")
async def cancel_unavailability(request: Request, declaration_id: str, user: Practitioner,
                                workflow: WorkflowDep) -> Response:
    await check_csrf(request, user)
    try:
        await run_in_threadpool(workflow.declarations.cancel, user.principal, declaration_id)
    except SasError as exc:
        return _back(error=messages.french(exc), anchor="#indisponibilites")
    return _back("Indisponibilité annulée.", anchor="#indisponibilites")


@router.post("/app/espace/participation")
async def participation(request: Request, user: Practitioner, workflow: WorkflowDep) -> Response:
    """Participation (individually or through a CPTS) and the phone for patients beyond displayed slots."""

    await check_csrf(request, user)
    form = await request.form()
    offer_id = str(form.get("offer_id") or "")
    try:
        if offer_id not in {o["id"] for o in await run_in_threadpool(_my_offers, request, user.principal)}:
            raise BadRequest("ce lieu d'exercice n'est pas le vôtre")
        current = await run_in_threadpool(workflow.store.get, "offers", offer_id)
        if current is None:
            raise BadRequest("lieu d'exercice inconnu")
        mode = str(form.get("participation") or "non")
        phone = " ".join(str(form.get("telephone") or "").split()) or None
        if phone and not all(c.isdigit() or c in "+ .()-" for c in phone):
            raise BadRequest("numéro de téléphone invalide : saisissez des chiffres, par exemple 05 56 12 34 56")
        accepts = bool(form.get("en_sus"))
        if accepts and not phone:
            raise BadRequest("donnez un numéro pour les patients en sus de vos disponibilités")
        cpts, cpts_name = None, None
        if mode == "cpts":
            # Security: the CPTS must be one of the directory's, and its name is the
            # directory's (a typed name is ignored): no enrolment in a made-up CPTS.

            cpts = finess_bare("".join(str(form.get("cpts_finess") or "").split()).upper())
            if not (cpts and FINESS_RE.match(cpts)):
                raise BadRequest("le numéro FINESS de la CPTS a 9 caractères (chiffres, ou 2A / 2B en Corse)")
            found = await run_in_threadpool(workflow.store.first, "offers", cpts_offer_body(finess=cpts))
            if found is None:
                raise BadRequest(f"aucune CPTS de numéro FINESS {cpts} dans l’annuaire")
            cpts_name = found.source.get("name") or (found.source.get("structure") or {}).get("name")
        sas = {"participates": mode != "non", "cpts_finess": cpts, "cpts_name": cpts_name,
               "accepts_beyond": accepts, "beyond_phone": phone}
        await run_in_threadpool(workflow.store.patch, "offers", current, {"sas": sas})
    except SasError as exc:
        return _back(error=messages.french(exc), anchor="#participation")
    return _back("Participation enregistrée.", anchor="#participation")
