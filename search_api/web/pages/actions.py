"""Actions from the search results: book a slot, orient beyond displayed slots, report a practitioner."""

from __future__ import annotations

import dataclasses
import re
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from sas_core.clock import utcnow
from sas_core.errors import BadRequest, SasError
from search_api.services import WorkflowDep
from search_api.web import format as fmt
from search_api.web import messages
from search_api.web.pages.common import Booker, is_htmx
from search_api.web.render import render
from search_api.web.session import WebUser, check_csrf
from search_api.workflow.booking import BookingRequest
from search_api.workflow.declarations import PeriodIn, end_of_day

router = APIRouter(include_in_schema=False)


# --- Actions from the results: book, orient beyond slots, report -------------------------------------------------


def _identifier(form, name: str, label: str) -> str:
    """A slot or offer id from a form, checked as the JSON API checks it (3 to 300 characters)."""
    value = str(form.get(name) or "").strip()
    if not 3 <= len(value) <= 300:
        raise BadRequest(f"{label} manquant ou invalide : rechargez la page puis recommencez")
    return value


def _key(form) -> str:
    """The form's idempotency key (one per rendered button: a double click books once), else a fresh one."""
    value = str(form.get("cle") or "")
    return value if 8 <= len(value) <= 200 else uuid.uuid4().hex


def _action_answer(request: Request, user: WebUser, template: str, **values: Any) -> Response:
    if is_htmx(request):
        return render(request, template, user=user, **values)
    return render(request, "action_page.html", user=user, fragment=template, **values)


#: Booking warnings (``BookingResult.warnings``) as the operator reads them.
BOOKING_WARNINGS = {"replayed": "Cette orientation était déjà enregistrée (double clic ou page renvoyée) : "
                                "elle n'a été faite qu'une fois."}


def _french_warnings(result):
    warnings = [BOOKING_WARNINGS.get(w) or messages.french(w) for w in result.warnings or []]
    return dataclasses.replace(result, warnings=warnings)


@router.post("/app/reserver", response_class=HTMLResponse)
async def book(request: Request, user: Booker, workflow: WorkflowDep) -> Response:

    await check_csrf(request, user)
    form = await request.form()
    slot_id = str(form.get("slot_id") or "").strip()
    if not confirmed(form) and 3 <= len(slot_id) <= 300:
        # A click on a slot only asks (a misclick must not book); the booking is made by the "Confirmer" form this
        # answer carries (a plain form: the same two steps work without JavaScript).
        return _action_answer(request, user, "fragments/confirm_booking.html", slot_id=slot_id,
                              summary=str(form.get("libelle") or "")[:300], territory=str(form.get("territoire") or ""),
                              key=_key(form), target=_target(form), htmx=is_htmx(request))
    try:
        # Services block (Elasticsearch, vendors) and may run their own event loop: off the server's loop.
        result = await run_in_threadpool(workflow.booking.book, user.principal, BookingRequest(
            slot_id=_identifier(form, "slot_id", "créneau"), idempotency_key=_key(form),
            territory=str(form.get("territoire") or "") or None, mode="auto"))
    except SasError as exc:
        return _action_answer(request, user, "fragments/action_error.html", message=messages.french(exc))
    return _action_answer(request, user, "fragments/booked.html", result=_french_warnings(result), slot_id=slot_id)


def _target(form) -> str:
    """The id of the element an answer replaces (``reponse-3``), echoed by the confirmation form; anything
    else: none."""
    value = str(form.get("cible") or "")
    return value if re.fullmatch(r"[a-z0-9-]{1,40}", value) else ""


def confirmed(form) -> bool:
    """The second step of an irreversible action: its form carries ``confirmer=oui``."""
    return str(form.get("confirmer") or "") == "oui"


@router.post("/app/adresser", response_class=HTMLResponse)
async def orient_beyond(request: Request, user: Booker, workflow: WorkflowDep) -> Response:
    await check_csrf(request, user)
    form = await request.form()
    try:
        result = await run_in_threadpool(
            workflow.booking.book_beyond, user.principal, offer_id=_identifier(form, "offer_id", "professionnel"),
            idempotency_key=_key(form), territory=str(form.get("territoire") or "") or None, consultation_start=None)
    except SasError as exc:
        return _action_answer(request, user, "fragments/action_error.html", message=messages.french(exc))
    return _action_answer(request, user, "fragments/booked.html", result=_french_warnings(result))


@router.post("/app/signaler", response_class=HTMLResponse)
async def report(request: Request, user: Booker, workflow: WorkflowDep) -> Response:
    await check_csrf(request, user)
    form = await request.form()
    kind = str(form.get("kind") or "")
    try:
        if kind not in fmt.DECLARATION_LABELS:
            raise BadRequest("choisissez le motif du signalement")
        if kind == "unavailable" and not confirmed(form):
            # "unavailable" hides the practitioner for every operator until tonight: asked first.
            return _action_answer(request, user, "fragments/confirm_report.html", kind=kind,
                                  offer_id=_identifier(form, "offer_id", "professionnel"),
                                  comment=str(form.get("comment") or "")[:500],
                                  practitioner=str(form.get("nom") or "")[:200],
                                  target=_target(form), htmx=is_htmx(request))
        period = None
        if kind == "unavailable":

            start = utcnow()
            period = PeriodIn(start, end_of_day(start))
        declaration = await run_in_threadpool(
            workflow.declarations.report, user.principal, kind=kind,
            offer_id=_identifier(form, "offer_id", "professionnel"), period=period,
            comment=str(form.get("comment") or "")[:500] or None)
    except SasError as exc:
        return _action_answer(request, user, "fragments/action_error.html", message=messages.french(exc))
    return _action_answer(request, user, "fragments/reported.html", declaration=declaration)
