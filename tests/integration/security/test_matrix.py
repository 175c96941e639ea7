"""The role × endpoint matrix, table-driven (``matrix.PROBES``): every route of the real app, called without
credentials and with every role, answers what the table says — 401 without credentials, 403 for a role
not allowed, the route's own answer for allowed roles — and a route missing from the table fails."""

from __future__ import annotations

import uuid

import pytest
from fastapi.routing import iter_route_contexts

from tests.integration.security.matrix import PROBES, README, ROLES, probe_body, readme_block_in, render_readme_block

BY_KEY = {probe.key: probe for probe in PROBES}


def app_endpoints(app) -> set[tuple[str, str]]:
    """(method, path) of every route the app serves (HEAD left out: it follows GET); mounts as ``*``."""
    endpoints: set[tuple[str, str]] = set()
    for route in iter_route_contexts(app.routes):
        methods = set(route.methods or ()) - {"HEAD"} or {"*"}
        endpoints.update((method, route.path) for method in methods)
    return endpoints


def call(api, probe, headers: dict[str, str]):
    headers = {**probe.headers, **headers}
    if probe.idempotent:
        headers["Idempotency-Key"] = f"matrix-{uuid.uuid4()}"
    return api.request(probe.method, probe.url or probe.path, json=probe_body(probe), headers=headers,
                       follow_redirects=False)


def test_every_route_has_exactly_one_entry(api):
    served = app_endpoints(api.app)
    assert len(BY_KEY) == len(PROBES), "a route is listed twice in the matrix"
    missing = sorted(served - set(BY_KEY))
    stale = sorted(set(BY_KEY) - served)
    assert not missing, f"routes without an entry in tests/integration/security/matrix.py: {missing}"
    assert not stale, f"matrix entries for routes that do not exist: {stale}"


def test_only_probes_and_docs_are_public():
    public = {probe.path for probe in PROBES if probe.allowed is None}
    assert public == {"/healthz", "/readyz", "/docs", "/openapi.json",
                      # the web interface's entry, login steps and its own static files
                      "/", "/login", "/login/oidc", "/login/callback", "/logout", "/static/{path:path}",
                      # issue 17: the footer's legal notice, personal data and accessibility statement
                      "/mentions-legales", "/donnees-personnelles", "/accessibilite"}


@pytest.mark.parametrize("probe", PROBES, ids=lambda p: f"{p.method} {p.path}")
def test_without_credentials(api, probe):
    response = call(api, probe, {})
    assert response.status_code in probe.expected(None), response.text[:300]
    if response.status_code == 401:
        assert response.headers.get("WWW-Authenticate", "").startswith("Bearer")
    if response.status_code == 303 and probe.allowed is not None:  # a page: to the login, and back after it
        assert response.headers["location"].startswith("/login?next=")


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r.value)
@pytest.mark.parametrize("probe", [p for p in PROBES if p.allowed is not None], ids=lambda p: f"{p.method} {p.path}")
def test_with_each_role(api, headers_for, probe, role):
    response = call(api, probe, headers_for(role))
    assert response.status_code in probe.expected(role), (role.value, response.status_code, response.text[:300])
    if probe.path.startswith("/fhir/") and response.status_code >= 400:
        assert response.json()["resourceType"] == "OperationOutcome"


def test_readme_block_is_the_matrix():
    block = readme_block_in(README.read_text(encoding="utf-8"))
    assert block == render_readme_block(), "README security block is stale: python -m tests.integration.security.matrix"
