"""The role × endpoint matrix: ONE table, used by the table-driven test (every route × every role, plus no
credentials) and rendered into the README (between ``<!-- security:start -->`` and ``<!-- security:end -->``).

Every route of the app must have exactly one ``Probe`` here: ``test_matrix.py`` enumerates ``app.routes``
and fails on a route without an entry (and on an entry without a route). A probe is one concrete request
that passes validation far enough to reach the business logic; ``ok`` is what every allowed role gets for
it (``ok_for`` overrides one role), every other role gets 403, and a caller without credentials gets one of
``anonymous`` (401 for the API; web pages may redirect to their login instead: ``anonymous=PAGE``).

Extension point for new routes (e.g. the web UI's HTML pages): add a ``Probe`` to ``PROBES`` (``PAGE`` for
``anonymous`` when the page redirects to a login), then regenerate the README block with
``.venv/bin/python -m tests.integration.security.matrix`` (a test checks it is up to date).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from search_api.auth import Role

OSNP, REG, EFF, SM, AM, ADMIN, INTEG, VENDOR = (Role.OSNP, Role.REGULATOR, Role.EFFECTEUR, Role.STRUCTURE_MANAGER,
                                                Role.ACCOUNT_MANAGER, Role.ADMIN, Role.INTEGRATOR, Role.VENDOR)
ROLES: tuple[Role, ...] = (OSNP, REG, EFF, SM, AM, ADMIN, INTEG, VENDOR)
EVERYONE = frozenset(ROLES)
SEARCH = frozenset({OSNP, REG, EFF, SM, INTEG, ADMIN})
OPERATORS = frozenset({REG, OSNP, ADMIN})
READERS = frozenset({REG, OSNP, AM, EFF, SM, ADMIN})
DASHBOARDS = frozenset({REG, OSNP, AM, ADMIN})
#: Web search pages: the search roles except integrators (systems, not people at a screen).
WEB_SEARCH = SEARCH - {INTEG}
API = frozenset({401})
#: What a browser page may answer without a session: a redirect to its login, or 401.
PAGE = frozenset({302, 303, 307, 401})
README = Path(__file__).resolve().parents[3] / "README.md"
START, END = "<!-- security:start -->", "<!-- security:end -->"

FHIR = {"Content-Type": "application/fhir+json"}


def _soon(hours: int) -> str:
    return (datetime.now(timezone.utc) + timedelta(hours=hours)).replace(microsecond=0).isoformat()


@dataclass(frozen=True)
class Probe:
    method: str
    path: str                                   # the route template, as FastAPI lists it
    allowed: frozenset[Role] | None             # None: public (no credentials needed)
    ok: int                                     # what an allowed role gets for this request
    url: str | None = None                      # the concrete URL (default: ``path``)
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    idempotent: bool = False                    # send a fresh Idempotency-Key each call
    ok_for: dict[Role, int] = field(default_factory=dict)
    anonymous: frozenset[int] = API
    scope: str = ""                             # what the caller sees within the route (README)

    @property
    def key(self) -> tuple[str, str]:
        return self.method, self.path

    def expected(self, role: Role | None) -> frozenset[int]:
        """The statuses acceptable for ``role`` (``None``: no credentials)."""
        if role is None:
            return frozenset({self.ok}) if self.allowed is None else self.anonymous
        if self.allowed is None or role in self.allowed:
            return frozenset({self.ok_for.get(role, self.ok)})
        return frozenset({403})


def _body(kind: str) -> Any:
    """Bodies built at call time (dates relative to now)."""
    if kind == "agenda":
        return {"offer_id": "matrix-no-such-offer", "items": [{"start": _soon(30), "end": _soon(31)}]}
    if kind == "unavailability":
        return {"offer_id": "matrix-no-such-offer", "periods": [{"start": _soon(1), "end": _soon(5)}]}
    raise KeyError(kind)


PROBES: tuple[Probe, ...] = (
    # -- public: probes and documentation -------------------------------------------------------------------
    Probe("GET", "/healthz", None, 200),
    Probe("GET", "/readyz", None, 200),
    Probe("GET", "/openapi.json", None, 200),
    Probe("GET", "/docs", None, 200),
    # -- identity, administration ---------------------------------------------------------------------------
    Probe("GET", "/metrics", frozenset({ADMIN}), 200),
    Probe("GET", "/v1/me", EVERYONE, 200),
    Probe("POST", "/v1/admin/api-keys", frozenset({ADMIN}), 201, json={"name": "matrix", "territories": ["SAS-92"]}),
    Probe("GET", "/v1/admin/api-keys", frozenset({ADMIN}), 200),
    Probe("DELETE", "/v1/admin/api-keys/{key_id}", frozenset({ADMIN}), 404, url="/v1/admin/api-keys/0123456789abcdef"),
    Probe("GET", "/v1/admin/audit", frozenset({ADMIN}), 200),
    # -- search ---------------------------------------------------------------------------------------------
    Probe("GET", "/v1/search", SEARCH, 200, url="/v1/search?lat=48.8924&lon=2.2071",
          scope="slot types by role (integrator: PUBLIC + granted)"),
    Probe("GET", "/v1/search/beyond", SEARCH, 200, url="/v1/search/beyond?lat=48.8924&lon=2.2071"),
    Probe("GET", "/v1/cpts/{cpts_id}", SEARCH, 404, url="/v1/cpts/matrix-no-such-cpts",
          scope="structure manager: own CPTS only"),
    Probe("GET", "/recherche", OPERATORS, 200, url="/recherche?code_postal=92000&ville=Nanterre"),
    # -- own agenda -----------------------------------------------------------------------------------------
    Probe("POST", "/v1/agenda/slots", frozenset({EFF, ADMIN}), 404, json="agenda", scope="effecteur: own offers"),
    Probe("GET", "/v1/agenda/slots", frozenset({EFF, ADMIN}), 404, url="/v1/agenda/slots?offer_id=matrix-no-such-offer",
          scope="effecteur: own offers"),
    Probe("DELETE", "/v1/agenda/slots/{slot_id}", frozenset({EFF, ADMIN}), 404,
          url="/v1/agenda/slots/matrix-no-such-slot", scope="effecteur: own slots"),
    # -- bookings and orientations --------------------------------------------------------------------------
    Probe("POST", "/v1/bookings", OPERATORS, 404, json={"slot_id": "matrix:no-such-slot"}, idempotent=True,
          scope="own territories"),
    Probe("POST", "/v1/bookings/beyond", OPERATORS, 404, json={"offer_id": "matrix-no-such-offer"}, idempotent=True,
          scope="own territories"),
    Probe("GET", "/v1/orientations", READERS, 200,
          scope="territories; effecteur: own; structure manager: its members'; audited"),
    Probe("GET", "/v1/orientations/export.csv", READERS, 200, scope="as the list; audited"),
    Probe("GET", "/v1/orientations/{orientation_id}", READERS, 404, url="/v1/orientations/matrix-no-such-orientation",
          scope="as the list (404 outside); audited"),
    Probe("POST", "/v1/orientations/{orientation_id}/honoured", frozenset({EFF, ADMIN}), 404,
          url="/v1/orientations/matrix-no-such-orientation/honoured", scope="effecteur concerned"),
    Probe("POST", "/v1/orientations/{orientation_id}/cancel", frozenset({REG, OSNP, EFF, ADMIN}), 404,
          url="/v1/orientations/matrix-no-such-orientation/cancel", scope="as the list"),
    # -- declarations ---------------------------------------------------------------------------------------
    Probe("POST", "/v1/declarations/unavailability", frozenset({EFF, ADMIN}), 404, json="unavailability",
          ok_for={ADMIN: 403}, scope="effecteur: own places (needs a national id: admin 403)"),
    Probe("POST", "/v1/declarations/reports", OPERATORS, 404,
          json={"kind": "other", "offer_id": "matrix-no-such-offer"},
          scope="places of own territories (403 elsewhere); filed under the offer's territory"),
    Probe("GET", "/v1/declarations", frozenset({REG, OSNP, AM, EFF, ADMIN}), 200,
          scope="territories; effecteur: about himself"),
    Probe("DELETE", "/v1/declarations/{declaration_id}", frozenset({REG, OSNP, EFF, ADMIN}), 404,
          url="/v1/declarations/" + "0" * 32,
          scope="author, practitioner concerned, regulators/OSNP of the offer's territory (reports), admin"),
    # -- dashboards -----------------------------------------------------------------------------------------
    Probe("GET", "/v1/dashboards/orientations", DASHBOARDS, 200, scope="own territories"),
    Probe("GET", "/v1/dashboards/participation", DASHBOARDS, 200, scope="own territories"),
    Probe("GET", "/v1/dashboards/declarations", DASHBOARDS, 200, scope="own territories; who hides whom"),
    Probe("GET", "/v1/dashboards/harvest", DASHBOARDS, 200, scope="national (vendor health, no territory data)"),
    # -- accounts (INT_R02) ---------------------------------------------------------------------------------
    Probe("POST", "/v1/accounts/login", frozenset({REG, OSNP}), 200, json={"family_name": "MATRICE"}),
    Probe("GET", "/v1/accounts", frozenset({AM, ADMIN}), 200, scope="account manager: own territories"),
    Probe("GET", "/v1/accounts/{account_id}", EVERYONE, 404, url="/v1/accounts/matrix-no-such-account",
          scope="own account; managers: their territories (404 otherwise)"),
    Probe("PUT", "/v1/accounts/{account_id}", frozenset({AM, ADMIN}), 200, url="/v1/accounts/matrix-account-1",
          json={"family_name": "LEMAIRE", "territories": ["SAS-92"]},
          scope="account manager: own territories (404 otherwise); identity: the holder's login"),
    Probe("DELETE", "/v1/accounts/{account_id}", frozenset({AM, ADMIN}), 404, url="/v1/accounts/matrix-no-such-account",
          scope="account manager: own territories (404 otherwise)"),
    # -- INT_R03 (vendors; mutual TLS on the dedicated listener, vendor token in dev mode) ---------------------
    Probe("POST", "/fhir/Appointment", frozenset({VENDOR}), 400, json={}, headers=FHIR,
          scope="OperationOutcome on every error; own practitioners, known regulators (422 otherwise)"),
    Probe("PUT", "/fhir/Appointment", frozenset({VENDOR}), 400, url="/fhir/Appointment?identifier=urn:x|1", json={},
          headers=FHIR, scope="OperationOutcome on every error"),
    Probe("GET", "/fhir/metadata", frozenset({VENDOR}), 200),
    # -- web interface (search_api/web): a session cookie, or the same credentials as the API; without any,
    #    pages redirect to /login (PAGE); forms in the practitioner space answer 303 back to /app/espace ------
    Probe("GET", "/", None, 303),
    Probe("GET", "/static/{path:path}", None, 200, url="/static/css/app.css"),
    Probe("GET", "/login", None, 200),
    # issue 17, point 1: the footer's information pages, public
    Probe("GET", "/mentions-legales", None, 200),
    Probe("GET", "/donnees-personnelles", None, 200),
    Probe("GET", "/accessibilite", None, 200),
    Probe("POST", "/login", None, 403, scope="dev mode: the form's CSRF token, role and territory"),
    Probe("GET", "/login/oidc", None, 303),
    Probe("GET", "/login/callback", None, 400),
    Probe("POST", "/logout", None, 303),
    Probe("GET", "/app/suggestions", WEB_SEARCH, 200, url="/app/suggestions?q=920", anonymous=PAGE),
    Probe("GET", "/v1/geocode/suggest", SEARCH, 200, url="/v1/geocode/suggest?q=agen"),
    Probe("GET", "/app/recherche", WEB_SEARCH, 200, anonymous=PAGE, scope="slot types by role; booking: operators"),
    Probe("GET", "/app/cpts/{cpts_id}", WEB_SEARCH, 404, url="/app/cpts/matrix-no-such-cpts", anonymous=PAGE,
          scope="structure manager: own CPTS only"),
    Probe("POST", "/app/reserver", OPERATORS, 200, anonymous=PAGE, scope="CSRF token with a session cookie"),
    Probe("POST", "/app/adresser", OPERATORS, 200, anonymous=PAGE),
    Probe("POST", "/app/signaler", OPERATORS, 200, anonymous=PAGE),
    Probe("GET", "/app/tableaux/orientations", DASHBOARDS, 200, anonymous=PAGE, scope="own territories; audited"),
    Probe("GET", "/app/tableaux/orientations.csv", DASHBOARDS, 200, anonymous=PAGE, scope="own territories; audited"),
    Probe("GET", "/app/tableaux/declarations", DASHBOARDS, 200, anonymous=PAGE, scope="own territories"),
    Probe("POST", "/app/tableaux/declarations/{declaration_id}/annuler", DASHBOARDS, 303,
          url="/app/tableaux/declarations/0123456789abcdef0123456789abcdef/annuler", anonymous=PAGE,
          scope="reports of own territories (regulators, OSNP)"),
    Probe("GET", "/app/tableaux/declarations/{declaration_id}/annuler", DASHBOARDS, 303,
          url="/app/tableaux/declarations/0123456789abcdef0123456789abcdef/annuler", anonymous=PAGE,
          scope="confirmation page; reports of own territories"),
    Probe("GET", "/app/tableaux/orientations/{orientation_id}/annuler", OPERATORS, 303,
          url="/app/tableaux/orientations/matrix-no-such-orientation/annuler", anonymous=PAGE,
          scope="confirmation page; open orientations of own territories"),
    Probe("POST", "/app/tableaux/orientations/{orientation_id}/annuler", OPERATORS, 303,
          url="/app/tableaux/orientations/matrix-no-such-orientation/annuler", anonymous=PAGE,
          scope="as POST /v1/orientations/{id}/cancel; CSRF token with a session cookie"),
    Probe("GET", "/app/tableaux/collecte", frozenset({ADMIN}), 200, anonymous=PAGE),
    Probe("GET", "/app/comptes", frozenset({AM, ADMIN}), 200, anonymous=PAGE, scope="account manager: own territories"),
    Probe("GET", "/app/espace", frozenset({EFF}), 200, anonymous=PAGE, scope="own places and orientations; audited"),
    Probe("POST", "/app/espace/orientations/{orientation_id}/honoree", frozenset({EFF}), 303,
          url="/app/espace/orientations/matrix-no-such-orientation/honoree", anonymous=PAGE),
    Probe("POST", "/app/espace/agenda", frozenset({EFF}), 303, anonymous=PAGE, scope="own places"),
    Probe("POST", "/app/espace/agenda/{slot_id}/supprimer", frozenset({EFF}), 303,
          url="/app/espace/agenda/sas:matrix-no-such-slot/supprimer", anonymous=PAGE),
    Probe("POST", "/app/espace/indisponibilites", frozenset({EFF}), 303, anonymous=PAGE),
    Probe("POST", "/app/espace/indisponibilites/{declaration_id}/annuler", frozenset({EFF}), 303,
          url="/app/espace/indisponibilites/0123456789abcdef0123456789abcdef/annuler", anonymous=PAGE),
    Probe("POST", "/app/espace/participation", frozenset({EFF}), 303, anonymous=PAGE, scope="own places"),
)


def probe_body(probe: Probe) -> Any:
    return _body(probe.json) if isinstance(probe.json, str) else probe.json


PREAMBLE = [
    "- **Authentication**: OIDC bearer tokens in production (`SAS_AUTH_MODE=oidc`, `SAS_OIDC_ISSUER`, "
    "`SAS_OIDC_AUDIENCE`, `SAS_OIDC_JWKS_URL`), verified by PyJWT (signature, issuer, audience, expiry with "
    "`SAS_JWT_LEEWAY_S`; key set cached and refetched when a token names an unknown key); `sas token` in dev mode. "
    "Integrator systems send `X-API-Key` (`sas apikey`, `/v1/admin/api-keys`): stored as a SHA-256 hash, "
    "revocable, scoped to territories. Claims: `roles`, `territories`, `national_id` (effecteurs), "
    "`structure_id` (structure managers: the CPTS FINESS).",
    "- **Vendors (INT_R03)** authenticate with mutual TLS on the dedicated listener (`sas fhir serve`: TLS 1.2 "
    "at least, client certificate required and verified against `SAS_FHIR_TLS_CLIENT_CA` and the CRL "
    "`SAS_FHIR_TLS_CLIENT_CRL`, re-read when it changes; subject CN **and** OU matched to a vendor by "
    "`SAS_FHIR_CLIENT_SUBJECTS`); outbound vendor calls present the platform's client certificate (vendors "
    "file `tls`).",
    "- **Scope**: a regulator, OSNP or account manager sees the orientations, declarations and dashboards of "
    "their territories only; an effecteur their own orientations; a structure manager the orientations made "
    "through their structure and only their own CPTS card (404 elsewhere, as for an unknown id).",
    # -- issue 15, points 5-7 (sec-trust): accounts, vendor reports, CPTS membership --------------------------
    "- **Accounts (INT_R02)**: an account's names, e-mail and national id are its holder's once he has logged in "
    "(a manager's `PUT` changing them: 409); at the first login of an account pre-created by a manager of other "
    "territories than the login's, nothing that manager wrote is kept (values, removal): the login's values win; "
    "an account without territory is managed by admins only; `PUT` / `DELETE` outside a manager's territories "
    "answer 404 like `GET`.",
    "- **Vendor reports (INT_R03)**: a new appointment must name a practitioner the vendor serves (vendors-file "
    "`roster` / `sos_roster`, offers naming it, slots it published) and a regulator with an account (IDNPS or "
    "INTRN; a removed one only for appointments created before); an SOS appointment without doctor only from a "
    "vendor doing SOS; an update may not move it to another vendor's practitioner; otherwise 422 "
    "OperationOutcome (`business-rule`).",
    "- **CPTS membership** (practitioner space): only a CPTS of the directory (FINESS, bare or `1`+FINESS); the "
    "membership carries the directory's name, never a typed one.",
    "- **Abuse and exposure**: per token / API key / vendor rate limit (`SAS_RATE_LIMIT`, 429 + `Retry-After`; "
    "an OperationOutcome on `/fhir`); "
    "security headers on every answer; CORS allow-list `SAS_CORS_ALLOW_ORIGINS`; `/metrics` for admins.",
    # --- issue 15, points 3, 13, 8 (sec-transport) ---
    "- **Request bodies**: at most `SAS_MAX_BODY_BYTES` (16 KiB) for JSON commands and web forms, "
    "`SAS_MAX_AGENDA_BODY_BYTES` (1 MiB) on `/v1/agenda`, `SAS_MAX_FHIR_BODY_BYTES` (64 KiB) on `/fhir` (main "
    "app and `sas fhir serve`): a larger declared `Content-Length` gets 413 before any byte is read, a chunked "
    "body a 413 once past the limit (JSON on the API, OperationOutcome `too-long` on `/fhir`, a French page on "
    "the web pages), and the connection is closed. On `/v1` a request with a body is authenticated (401 / 429) "
    "before the body is read or parsed.",
    "- **Failed authentication**: `SAS_AUTH_FAILURE_LIMIT` (default `20/minute`) bad tokens or API keys per "
    "client address; past it, credentials not verified lately get 429 + `Retry-After` without being checked "
    "(those verified lately keep working; other addresses are not concerned). An unknown API key id is "
    "remembered `SAS_API_KEY_CACHE_S` (no second Elasticsearch read); keys and tokens are verified in the "
    "thread pool, never on the event loop (`/fhir` too). The address is the one uvicorn sees: behind a reverse "
    "proxy set `FORWARDED_ALLOW_IPS` to the proxy so that its `X-Forwarded-For` counts (default: 127.0.0.1 "
    "only).",
    "- **Claims and 500s**: a token claim of the wrong type (`national_id`, `name`, `structure_id` not a "
    "string; `roles`, `territories` not strings) is a 401 naming the claim; an unhandled exception answers 500 "
    "with the security headers and the request id (an OperationOutcome on `/fhir`).",
    # --- end sec-transport ---
    "- **Audit**: every view, list page and CSV export of orientations writes a `sas.audit` log record and a "
    "document in the `audit` index (who, roles, territories, orientation ids and count, filters, request id; "
    "never patient data); admins read it with `GET /v1/admin/audit`.",
    # -- Declarations and agenda bounds (issue 15, points 1 and 14; sec-decl) --
    "- **Reports about practitioners**: a regulator / OSNP reports (`POST /v1/declarations/reports`) about places "
    "of their own territories only (403 elsewhere, also without territory); the report is filed under the "
    "offer's territory, whose regulators and OSNP list and cancel it; an `unavailable` report ends at most "
    "`SAS_REPORT_MAX_HOURS` (72) hours from now (422 past that; longer absences are the practitioner's own "
    "declaration); each author files at most `SAS_REPORTS_PER_HOUR` (30) reports per rolling hour, cancelled "
    "ones included, one at a time (429 + `Retry-After`); `GET /v1/dashboards/declarations` (`hiding`) and "
    "`/app/tableaux/declarations` show who hides whom: author, roles, territories, practitioner, place, until when; "
    "`sas declarations refile-reports` moves reports filed by earlier versions under the author's territory to "
    "the offer's.",
    "- **Bounded writes and listings**: `GET /v1/declarations` refuses page × size over 10000 (400, a plain "
    "message; Elasticsearch's own refusals are logged, never echoed); the platform agenda (`POST /v1/agenda/slots`) "
    "takes at most `SAS_AGENDA_MAX_ITEMS` (100) items per call, slots starting within `SAS_AGENDA_HORIZON_DAYS` "
    "(90) days, and at most `SAS_AGENDA_MAX_FUTURE_SLOTS` (1000) future slots per offer (422 each); each call "
    "refreshes the slots index once so that the author and search see the slots at once.",
    "- **Bad input**: 4xx with a message (`{\"error\", \"message\"}`; an OperationOutcome on `/fhir`), never 500; "
    "`tests/integration/security/test_fuzz.py` runs schemathesis over the OpenAPI schema in `make test` (every "
    "operation, valid and invalid examples, bounded and derandomized, about a minute), `test_fuzz_pages.py` does "
    "the same for the web pages' query strings; dates are accepted between years 1900 and 2200.",
    # -- web sessions, hosts, docs, exports (issue 15, points 2, 4, 9-12: sec-session) -----------------------
    "- **Web sessions** are server-side (`web_sessions` index): the HttpOnly, SameSite=Lax cookie holds only a "
    "signed random session id; the session keeps the claims verified at login (never the token), its CSRF token "
    "and its times, under the id's SHA-256. Logout deletes it (a copied cookie then gets the login page); it ends "
    "after `SAS_WEB_SESSION_IDLE_S` (30 min) without a request, `SAS_WEB_SESSION_MAX_S` (12 h) after login, or at "
    "the token's expiry. Cookies are `Secure` in OIDC mode or with `SAS_WEB_COOKIE_SECURE` (set in "
    "`compose.yaml`); `SAS_WEB_SESSION_SECRET` needs 32 characters. Dev `POST /login` needs the login form's "
    "CSRF token (double-submit cookie `sas_login_csrf`), `POST /logout` the session's (403 otherwise).",
    "- **Pages are rate limited** by the API's limiter under the same key (the principal's subject): a French "
    "429 page with `Retry-After`.",
    "- **Own URLs never come from `Host`**: OIDC mode refuses to start without an https `SAS_PUBLIC_BASE_URL` "
    "(OIDC `redirect_uri`, FHIR `Location`); `SAS_ALLOWED_HOSTS` (optional, e.g. `[\"sas.example.fr\"]`) "
    "answers 400 to any other `Host` on the API and the mutual-TLS listener.",
    "- **No third-party script**: `/docs` runs the pinned, vendored `swagger-ui-dist` under its own CSP "
    "(no `/redoc`); map tooltips take names as text; CSV export cells starting with `= + - @`, tab or CR get a "
    "leading `'` (formula injection).",
]


def render_readme_block() -> str:
    """The README block: the matrix as a Markdown table (✓ allowed, · refused with 403)."""
    header = "| Endpoint | " + " | ".join(r.value for r in ROLES) + " | Scope within the route |"
    rule = "|---|" + "---|" * len(ROLES) + "---|"
    lines = [START, "", "## Security and access control", "", *PREAMBLE, "", "### Role × endpoint matrix", "",
             "Generated from `tests/integration/security/matrix.py` (`python -m "
             "tests.integration.security.matrix`); `tests/integration/security/test_matrix.py` calls every route "
             "with every role and checks this table. ✓ allowed, · refused (403); without credentials every "
             "non-public route answers 401. Public: " + ", ".join(f"`{p.path}`" for p in PROBES if p.allowed is None)
             + ".", "", header, rule]
    for probe in PROBES:
        if probe.allowed is None:
            continue
        cells = ["✓" if role in probe.allowed else "·" for role in ROLES]
        lines.append(f"| `{probe.method} {probe.path}` | " + " | ".join(cells) + f" | {probe.scope} |")
    lines += ["", END]
    return "\n".join(lines)


def readme_block_in(text: str) -> str | None:
    start, end = text.find(START), text.find(END)
    if start < 0 or end < 0:
        return None
    return text[start:end + len(END)]


def write_readme() -> None:
    """Replace (or append) the README block."""
    text = README.read_text(encoding="utf-8")
    current = readme_block_in(text)
    block = render_readme_block()
    text = text.replace(current, block) if current else text.rstrip("\n") + "\n\n" + block + "\n"
    README.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    write_readme()
    print(f"updated {README}")
