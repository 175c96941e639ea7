"""FastAPI dependencies: settings, the Elasticsearch executor, the authenticated principal."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from sas_core.errors import Unauthenticated
from sas_core.settings import Settings
from search_api.auth import Principal, Role, require_role
from search_api.executor import Executor

_bearer = HTTPBearer(auto_error=False, description="Bearer token (dev: `sas token`; production: OIDC)")
_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="Integrator API key")


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_executor(request: Request) -> Executor:
    return request.app.state.executor


def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key_header)] = None,
) -> Principal:
    """The caller, from a valid bearer token or integrator API key (401 otherwise), rate limited (429)."""
    state = request.app.state
    if api_key:
        principal = state.api_keys.verify(api_key)
    elif credentials is not None and credentials.scheme.lower() == "bearer" and credentials.credentials:
        principal = state.token_verifier.verify(credentials.credentials)
    else:
        raise Unauthenticated("missing bearer token or API key")
    state.rate_limiter.check(principal.sub)
    return principal


def roles(*allowed: Role):
    """Dependency factory: the principal, provided it has one of ``allowed``."""

    def dependency(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        return require_role(principal, *allowed)

    return dependency


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]
ExecutorDep = Annotated[Executor, Depends(get_executor)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
