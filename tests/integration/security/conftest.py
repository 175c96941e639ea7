"""Credentials of every role for the security tests: dev bearer tokens (OIDC in production) and, for the
integrator, a real API key created through the app's key store."""

from __future__ import annotations

import pytest

from search_api.auth import Role

#: Fictional identifiers used by the security tests (no other test uses them).
EFFECTEUR_ID = "810009990001"
OTHER_EFFECTEUR_ID = "810009990002"
STRUCTURE_FINESS = "920099901"
OTHER_STRUCTURE_FINESS = "470099902"


@pytest.fixture(scope="session")
def integrator_key(api) -> str:
    raw, _ = api.app.state.api_keys.create(name="LRM SAS 92 (security tests)", territories=["SAS-92"],
                                           slot_types=[], created_by="security-tests")
    return raw


@pytest.fixture(scope="session")
def headers_for(token_for, integrator_key):
    """``headers_for(Role.REGULATOR)``: credentials of a typical caller of that role (territory SAS-92)."""

    def make(role: Role) -> dict[str, str]:
        if role is Role.INTEGRATOR:
            return {"X-API-Key": integrator_key}
        claims: dict = {"sub": f"matrix-{role.value}"}
        if role in (Role.OSNP, Role.REGULATOR, Role.ACCOUNT_MANAGER, Role.STRUCTURE_MANAGER):
            claims["territories"] = ["SAS-92"]
        if role is Role.EFFECTEUR:
            claims["national_id"] = EFFECTEUR_ID
        if role is Role.STRUCTURE_MANAGER:
            claims["structure_id"] = STRUCTURE_FINESS
        if role is Role.VENDOR:
            claims["name"] = "medilib"
        return token_for(role.value, **claims)

    return make


@pytest.fixture(scope="session")
def everything_headers(token_for) -> dict[str, str]:
    """A caller holding every role (an admin's scope, a vendor's name, an effecteur's id): every request goes
    past authorisation into the route's own validation and logic. Its territory is one no other test uses:
    fuzzed bookings may succeed (the schema's examples name real slots) and must not show up elsewhere."""
    return token_for(*[r.value for r in Role], territories=["SAS-974"], sub="fuzz-all-roles",
                     national_id="810009990009", structure_id="920099909", name="medilib")
