"""Dashboards: orientations (table, CSV, cancelling), declarations (cancelling reports), harvest health."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from sas_core.clock import utcnow
from sas_core.errors import BadRequest, SasError
from search_api.auth import Role
from search_api.params import filters_from
from search_api.services import ServicesDep, WorkflowDep
from search_api.web import format as fmt
from search_api.web import messages
from search_api.web.pages.common import PAGE_SIZE, Admin, Context, Viewer, day_after, is_htmx, specialty_options
from search_api.web.render import render
from search_api.web.session import ROLE_LABELS, WebUser, check_csrf, page_roles
from search_api.workflow import csv_export
from search_api.workflow.queries import DeclarationFilters
from search_api.workflow.scope import orientation_scope_filter, scope_for

router = APIRouter(include_in_schema=False)


# --- Dashboards -----------------------------------------------------------------------------------------------


def _orientation_filters(*, statut, territoire, du, au, periode):
    return filters_from(territory=[territoire] if territoire else None, from_=du or None,
                        to=(day_after(au) if au and len(au) == 10 else au or None),
                        period="consultation" if periode == "consultation" else "created",
                        status=[statut] if statut else None, effecteur=None, category=None, source=None)


@router.get("/app/tableaux/orientations", response_class=HTMLResponse)
def orientations_page(request: Request, user: Viewer, workflow: WorkflowDep, context: Context,
                      statut: str | None = None,
                      territoire: str | None = None, du: str | None = None, au: str | None = None,
                      periode: str = "created", page: Annotated[int, Query(ge=1, le=400)] = 1,
                      message: str | None = None, erreur: str | None = None) -> Response:
    filters_state = {"statut": statut or "", "territoire": territoire or "", "du": du or "", "au": au or "",
                     "periode": periode}
    error: str | None = None
    total = 0
    rows: list[dict] = []
    try:
        filters = _orientation_filters(statut=statut, territoire=territoire, du=du, au=au, periode=periode)
        total, rows = workflow.orientations.list(scope_for(user.principal), filters, page=page, size=PAGE_SIZE)
    except SasError as exc:
        error = messages.french(exc)
    undelivered: dict[str, dict[str, int]] = {}
    if workflow.publisher.enabled and workflow.deliveries is not None and not error:
        # INT_L02 messages the regulation software has not acknowledged, per territory of the viewer's scope.
        restriction = orientation_scope_filter(scope_for(user.principal))
        undelivered = workflow.deliveries.undelivered(restriction=restriction)
    today = datetime.now(fmt.PARIS).date().isoformat()
    query = urlencode({k: v for k, v in filters_state.items() if v})
    template = "fragments/orientations_table.html" if is_htmx(request) else "orientations.html"
    return render(request, template, user=user, rows=rows, total=total, page=page, size=PAGE_SIZE,
                  undelivered=undelivered, message=message[:200] if message else None,
                  action_error=erreur[:300] if erreur else None, can_cancel=user.has(*CANCELLERS),
                  open_statuses=OPEN_STATUSES,
                  pages=max(1, -(-total // PAGE_SIZE)), f=filters_state, error=error, query=query,
                  statuses=fmt.STATUS_LABELS, today=today, territories=sorted(user.principal.territories),
                  # The labels the CSV export writes too: without their "(SM)" suffix.
                  specialty_labels={c: context.specialties.label(c) or label
                                    for c, label in specialty_options(context)})


@router.get("/app/tableaux/orientations.csv")
def orientations_csv(user: Viewer, workflow: WorkflowDep, context: Context, statut: str | None = None,
                     territoire: str | None = None, du: str | None = None, au: str | None = None,
                     periode: str = "created") -> StreamingResponse:
    filters = _orientation_filters(statut=statut, territoire=territoire, du=du, au=au, periode=periode)
    docs = workflow.orientations.export(scope_for(user.principal), filters)
    # The screen's labels: the table and the CSV read the same.
    return StreamingResponse(csv_export.stream(docs, specialty_label=context.specialties.label),
                             media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": 'attachment; filename="orientations.csv"'})


# --- Cancelling from the tables: a confirmation page (a click alone never cancels), then a CSRF-checked POST --

#: Who may cancel an orientation (the roles of ``POST /v1/orientations/{id}/cancel`` that see this table).
CANCELLERS = (Role.REGULATOR, Role.OSNP, Role.ADMIN)
Canceller = Annotated[WebUser, Depends(page_roles(*CANCELLERS))]
OPEN_STATUSES = ("oriented", "booked", "pending")
_ID_CHARS = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_-")


def _checked_id(value: str, *, what: str) -> str:
    """An orientation or declaration id as the API accepts it (8 to 64 letters, digits, ``_`` or ``-``)."""
    if not 8 <= len(value) <= 64 or not set(value) <= _ID_CHARS:
        raise BadRequest(f"identifiant {what} invalide : revenez au tableau et choisissez la ligne à annuler")
    return value


def _to_orientations(message: str | None = None, error: str | None = None) -> RedirectResponse:
    query = urlencode({k: v for k, v in (("message", message), ("erreur", error)) if v})
    return RedirectResponse("/app/tableaux/orientations" + (f"?{query}" if query else ""), status_code=303)


@router.get("/app/tableaux/orientations/{orientation_id}/annuler", response_class=HTMLResponse)
def confirm_cancel_orientation(request: Request, orientation_id: str, user: Canceller,
                               workflow: WorkflowDep, context: Context) -> Response:
    """The confirmation page of a cancel (works without JavaScript): what is cancelled, and the button."""
    try:
        document = workflow.orientations.get(_checked_id(orientation_id, what="d'orientation"),
                                             scope_for(user.principal))
    except SasError as exc:
        return _to_orientations(error=exc.message if exc.status_code != 404 else
                                "Orientation introuvable dans vos territoires : elle a pu être supprimée.")
    if document.get("status") not in OPEN_STATUSES:
        status_label = fmt.STATUS_LABELS.get(document.get("status") or "", "")
        return _to_orientations(error=f"Cette orientation est « {status_label} » : "
                                      "elle ne peut plus être annulée.")
    specialty = (document.get("effecteur") or {}).get("specialty")
    return render(request, "confirm_cancel.html", user=user, kind="orientation", document=document,
                  specialty=context.specialties.label(specialty) if specialty else None,
                  action=f"/app/tableaux/orientations/{orientation_id}/annuler",
                  back="/app/tableaux/orientations")


@router.post("/app/tableaux/orientations/{orientation_id}/annuler")
async def cancel_orientation(request: Request, orientation_id: str, user: Canceller, workflow: WorkflowDep) -> Response:
    """Cancel as ``POST /v1/orientations/{id}/cancel`` does (same service, same rules: open orientations of
    the user's territories; the platform agenda's place or the vendor claim is given back)."""
    await check_csrf(request, user)
    try:
        await run_in_threadpool(workflow.cancel, _checked_id(orientation_id, what="d'orientation"),
                                user.principal, reason=None)
    except SasError as exc:
        if exc.status_code == 409:
            return _to_orientations(error="Cette orientation n'est plus en cours (honorée, non honorée ou déjà "
                                          "traitée) : elle ne peut plus être annulée.")
        if exc.status_code == 404:
            return _to_orientations(error="Orientation introuvable dans vos territoires : elle a pu être supprimée.")
        return _to_orientations(error=exc.message)
    return _to_orientations("Orientation annulée. Prévenez le professionnel si le patient ne viendra pas.")


@router.get("/app/tableaux/declarations/{declaration_id}/annuler", response_class=HTMLResponse)
def confirm_cancel_report(request: Request, declaration_id: str, user: Viewer, workflow: WorkflowDep) -> Response:
    target = "/app/tableaux/declarations?"
    try:
        found = workflow.store.get("declarations", _checked_id(declaration_id, what="de déclaration"))
    except SasError as exc:
        return RedirectResponse(target + urlencode({"erreur": exc.message}), status_code=303)
    principal = user.principal
    source = found.source if found is not None else {}
    # Shown only to who may cancel it (the service checks again on the POST).
    visible = found is not None and (principal.has_any(Role.ADMIN) or source.get("declared_by") == principal.sub or (
        principal.has_any(Role.REGULATOR, Role.OSNP) and source.get("declared_by_role") == "regulator"
        and source.get("territory") in principal.territories))
    if not visible:
        return RedirectResponse(target + urlencode({"erreur": "Signalement introuvable dans vos territoires."}),
                                status_code=303)
    if not source.get("active", True):
        return RedirectResponse(target + urlencode({"message": "Ce signalement est déjà annulé."}), status_code=303)
    return render(request, "confirm_cancel.html", user=user, kind="declaration", document=source, specialty=None,
                  action=f"/app/tableaux/declarations/{declaration_id}/annuler", back="/app/tableaux/declarations")


@router.get("/app/tableaux/declarations", response_class=HTMLResponse)
def declarations_page(request: Request, user: Viewer, workflow: WorkflowDep, actives: bool = False,
                      message: str | None = None, erreur: str | None = None) -> Response:
    filters = DeclarationFilters(active=True if actives else None)
    total, rows = workflow.declarations.list(scope_for(user.principal), filters, page=1, size=100)
    for row in rows:
        # A practitioner-wide unavailability spanning several territories lists them all.
        if isinstance(row.get("territory"), list):
            row["territory"] = ", ".join(row["territory"])
    regulators = [r for r in rows if r.get("declared_by_role") != "effecteur"]
    practitioners = [r for r in rows if r.get("declared_by_role") == "effecteur"]
    # Regulators and OSNP cancel the reports of their territories (the service checks each one).
    can_cancel = user.principal.has_any(Role.REGULATOR, Role.OSNP, Role.ADMIN)
    return render(request, "declarations.html", user=user, regulators=regulators, practitioners=practitioners,
                  total=total, actives=actives, now=utcnow(), can_cancel=can_cancel,
                  message=message, error=erreur, report_max_hours=workflow.settings.report_max_hours,
                  role_labels=ROLE_LABELS)


@router.post("/app/tableaux/declarations/{declaration_id}/annuler")
async def cancel_report(request: Request, declaration_id: str, user: Viewer, workflow: WorkflowDep) -> Response:
    await check_csrf(request, user)
    target = "/app/tableaux/declarations?"
    try:
        await run_in_threadpool(workflow.declarations.cancel, user.principal, declaration_id)
    except SasError as exc:
        return RedirectResponse(target + urlencode({"erreur": messages.french(exc)}), status_code=303)
    return RedirectResponse(target + urlencode({"message": "Signalement annulé."}), status_code=303)


@router.get("/app/tableaux/collecte", response_class=HTMLResponse)
def harvest_page(request: Request, user: Admin, services: ServicesDep,
                 jours: Annotated[int, Query(ge=1, le=90)] = 7) -> Response:
    health = services.dashboards.harvest(days=jours)
    # Vendors that are down first: the administrator sees them without scrolling.
    vendors = sorted(health["vendors"], key=lambda v: (not v.get("down"), v["vendor"]))
    return render(request, "harvest.html", user=user, health=health, vendors=vendors, jours=jours,
                  served_help=fmt.SERVED_HELP)
