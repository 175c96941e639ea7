"""INT_R03 server: vendors report the appointments taken by regulators, then every status change.

- ``POST /fhir/Appointment`` → 201 ``Location: [base]/Appointment/<id>`` (200 when the vendor's
  identifier is known already: idempotent);
- ``PUT /fhir/Appointment?identifier=<system>|<value>`` → 200 (201 when it creates). The guide writes the
  parameter ``?Identifier=`` and shows an example without query: the name is read in any case, a bare
  ``<value>`` matches the body's value, and without the parameter the body's identifier is the condition;
- errors: 400 malformed, 422 business rule, 401 / 403 not an authenticated vendor, 415 media type:
  always an ``OperationOutcome``.

Who may call: a vendor presenting a client certificate on the mutual-TLS listener (``sas fhir serve``),
whose CN and OU are one of ``SAS_FHIR_CLIENT_SUBJECTS`` (each naming a vendor of the vendors registry);
in dev mode, on the main app only, also a bearer token with the ``vendor`` role (vendor = the token's
``name``), so that the rest of the suite can exercise INT_R03 without TLS.
"""

from __future__ import annotations

import orjson
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.middleware.trustedhost import TrustedHostMiddleware

from sas_core.errors import SasError, Unauthenticated
from sas_core.es import make_client
from sas_core.settings import Settings
from search_api.audit import AuditLog
from search_api.auth import Role, TokenVerifier
from search_api.deps import client_address, verify_throttled
from search_api.executor import Executor
from search_api.fhir_outcome import FHIR_JSON, SAS_CODES, outcome_response
from search_api.middleware import BodyLimitMiddleware, MetricsAndHeadersMiddleware
from search_api.ratelimit import AuthFailureThrottle, PrincipalRateLimiter
from search_api.tls import client_cert_subject
from search_api.workflow.appointments import (
    PROFILE,
    SOS_PROFILE,
    FhirInvalid,
    Issue,
    conditional_identifier,
    parse_appointment,
)
from search_api.workflow.wiring import build_workflow

router = APIRouter(prefix="/fhir", tags=["INT_R03 (vendors)"])
_ACCEPTED_TYPES = ("application/fhir+json", "application/json+fhir", "application/json")
class _Refused(Exception):
    def __init__(self, status: int, code: str, text: str) -> None:
        super().__init__(text)
        self.status, self.code, self.text = status, code, text


def calling_vendor(request: Request) -> str:
    """The vendor behind this request (client certificate, or a dev-mode vendor token), rate limited per
    vendor like every other caller (``TooManyRequests``: a 429 OperationOutcome with Retry-After)."""
    vendor = _identify_vendor(request)
    limiter = getattr(request.app.state, "rate_limiter", None)
    if limiter is not None:
        limiter.check(f"vendor:{vendor}")
    return vendor


def _identify_vendor(request: Request) -> str:
    workflow = request.app.state.workflow
    settings: Settings = request.app.state.settings
    known = {v.name for v in workflow.vendors()}
    subject = client_cert_subject(request.scope)
    if subject is not None:
        # On the mutual-TLS listener the certificate alone decides (never a token beside it).
        return _vendor_of_certificate(settings, subject, known)
    api_keys = getattr(request.app.state, "api_keys", None)
    if api_keys is not None and request.headers.get("x-api-key"):
        # An integrator key is a valid identity on the main app, but not a vendor's: 403 (401 if invalid).
        try:
            _verified(request, api_keys, request.headers["x-api-key"])
        except Unauthenticated as exc:
            raise _Refused(401, "login", exc.message) from None
        raise _Refused(403, "forbidden", "only vendors report appointments")
    if settings.auth_mode == "dev":
        header = request.headers.get("authorization") or ""
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token:
            try:
                principal = _verified(request, request.app.state.token_verifier, token)
            except Unauthenticated as exc:
                raise _Refused(401, "login", exc.message) from None
            if Role.VENDOR not in principal.roles:
                raise _Refused(403, "forbidden", "only vendors report appointments")
            name = principal.name or principal.sub
            if known and name not in known:
                raise _Refused(403, "security", f"{name!r} is not a registered vendor")
            return name
    raise _Refused(401, "login", "vendors authenticate with a client certificate (mutual TLS)")


def _verified(request: Request, store, credential: str):
    """``store.verify(credential)`` (blocking: called in the thread pool) behind the failed-authentication
    throttle of every way in (a 429 OperationOutcome with Retry-After)."""
    return verify_throttled(request.app.state, store, credential, client_address(request.scope))


def _vendor_of_certificate(settings: Settings, subject, known: set[str]) -> str:
    """The vendor whose configured (CN, OU) the certificate carries (securite.md: CN *and* OU checked)."""
    matches = [s for s in settings.fhir_client_subjects if s.cn == subject.cn and s.ou in subject.ous]
    if not matches:
        same_cn = any(s.cn == subject.cn for s in settings.fhir_client_subjects)
        what = (f"OU {list(subject.ous)!r} is not the one expected for CN {subject.cn!r}" if same_cn
                else f"CN {subject.cn!r} is not an accepted vendor certificate")
        raise _Refused(403, "security", f"client certificate refused: {what}")
    vendors = {m.vendor for m in matches}
    if len(vendors) > 1:      # a configuration mistake: never guess whose report this is
        raise _Refused(403, "security", f"client certificate CN {subject.cn!r} names several vendors")
    name = vendors.pop()
    if name not in known:
        raise _Refused(403, "security", f"vendor {name!r} of this certificate is not in the editors registry")
    return name


def _base(request: Request) -> str:
    settings: Settings = request.app.state.settings
    if settings.public_base_url and client_cert_subject(request.scope) is None:
        return settings.public_base_url.rstrip("/") + "/fhir"
    return str(request.base_url).rstrip("/") + "/fhir"


async def _handle(request: Request, *, conditional: bool) -> Response:
    try:
        # Off the event loop: an API key is read from Elasticsearch, a token's key from its file.
        vendor = await run_in_threadpool(calling_vendor, request)
        content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
        if content_type and content_type not in _ACCEPTED_TYPES:
            raise _Refused(415, "not-supported", f"media type {content_type!r}: send application/fhir+json")
        condition = conditional_identifier(request.query_params.multi_items()) if conditional else None
        report = parse_appointment(await request.body())
        identifier = None
        if conditional:
            # No parameter (the guide's own example): the body's identifier is the condition.
            if condition is not None and not condition.matches(report.system, report.value):
                raise FhirInvalid(400, [Issue("error", "invalid", "the identifier of the URL and of the body differ",
                                              "Appointment.identifier")])
            identifier = (report.system, report.value)
        workflow = request.app.state.workflow
        document, created = await run_in_threadpool(workflow.reports.receive, vendor, report,
                                                    conditional=identifier)
    except FhirInvalid as exc:
        return outcome_response(exc.status, exc.issues)
    except _Refused as exc:
        headers = {"WWW-Authenticate": 'Bearer realm="sas-fhir"'} if exc.status == 401 else None
        return outcome_response(exc.status, [Issue("error", exc.code, exc.text)], headers)
    except SasError as exc:
        headers = {"Retry-After": str(exc.retry_after_s)} if hasattr(exc, "retry_after_s") else None
        return outcome_response(exc.status_code, [Issue("error", SAS_CODES.get(exc.status_code, "exception"),
                                                        exc.message)], headers)
    location = f"{_base(request)}/Appointment/{document['id']}"
    body = {"resourceType": "Appointment", "id": document["id"], "status": _fhir_status(document["status"]),
            "identifier": [{"system": report.system, "value": report.value}]}
    return Response(orjson.dumps(body), status_code=201 if created else 200, media_type=FHIR_JSON,
                    headers={"Location": location})


def _fhir_status(status: str) -> str:
    return "booked" if status == "oriented" else status


@router.post("/Appointment", summary="INT_R03: a vendor reports an appointment (FrAppointmentSAS)")
async def create_appointment(request: Request) -> Response:
    return await _handle(request, conditional=False)


@router.put("/Appointment", summary="INT_R03: conditional update ?identifier=<system>|<value>")
async def update_appointment(request: Request) -> Response:
    return await _handle(request, conditional=True)


@router.get("/metadata", summary="CapabilityStatement of the INT_R03 server (vendors only)")
def metadata(request: Request) -> Response:
    # Like every route but the probes and the docs, the capability statement needs an authenticated vendor.
    try:
        calling_vendor(request)
    except _Refused as exc:
        headers = {"WWW-Authenticate": 'Bearer realm="sas-fhir"'} if exc.status == 401 else None
        return outcome_response(exc.status, [Issue("error", exc.code, exc.text)], headers)
    except SasError as exc:  # rate limited
        headers = {"Retry-After": str(exc.retry_after_s)} if hasattr(exc, "retry_after_s") else None
        return outcome_response(exc.status_code, [Issue("error", SAS_CODES.get(exc.status_code, "exception"),
                                                        exc.message)], headers)
    body = {"resourceType": "CapabilityStatement", "status": "active", "kind": "instance", "fhirVersion": "4.0.1",
            "format": [FHIR_JSON, "application/json+fhir"], "rest": [{"mode": "server", "resource": [
                {"type": "Appointment", "supportedProfile": [PROFILE, SOS_PROFILE],
                 "interaction": [{"code": "create"}, {"code": "update"}], "conditionalUpdate": True,
                 # An update naming an unknown appointment creates it (the guide's SOS CapabilityStatement).
                 "updateCreate": True,
                 "searchParam": [{"name": "identifier", "type": "token",
                                  "definition": "http://hl7.org/fhir/SearchParameter/Appointment-identifier"}]}]}]}
    return Response(orjson.dumps(body), media_type=FHIR_JSON)


def create_fhir_app(settings: Settings, *, es=None) -> FastAPI:
    """The app of the mutual-TLS listener: the INT_R03 routes only (no bearer-token API). Its services are
    built here, once: the workflow (``app.state.workflow``, what the routes use), the token verifier and the
    throttles of a dev-mode vendor token."""
    app = FastAPI(title="SAS platform INT_R03 (vendors)", version="1", docs_url=None, redoc_url=None)
    executor = Executor(es=es or make_client(settings), prefix=settings.index_prefix)
    app.state.settings = settings
    app.state.executor = executor
    app.state.workflow = build_workflow(settings, executor, audit=AuditLog(executor=executor))
    app.state.token_verifier = TokenVerifier(settings)
    app.state.rate_limiter = PrincipalRateLimiter(settings.rate_limit)
    if settings.allowed_hosts:   # the Host header builds this listener's Location (search_api/hosts.py)
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=settings.allowed_hosts, www_redirect=False)
    app.state.auth_failures = AuthFailureThrottle(settings.auth_failure_limit)
    # Bounded bodies and the security headers on this listener too (500s included).
    app.add_middleware(BodyLimitMiddleware, settings=settings)
    app.add_middleware(MetricsAndHeadersMiddleware)
    app.include_router(router)
    return app
