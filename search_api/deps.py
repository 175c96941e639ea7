"""FastAPI dependencies: settings, the Elasticsearch executor, the authenticated principal."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from sas_core.errors import Unauthenticated
from sas_core.settings import Settings
from search_api.auth import Principal, Role, TokenVerifier, require_role
from search_api.executor import Executor

_bearer = HTTPBearer(auto_error=False, description="Bearer token (dev: `sas token`; production: OIDC)")


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_executor(request: Request) -> Executor:
    return request.app.state.executor


def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller, from a valid bearer token; 401 otherwise."""
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthenticated("missing bearer token")
    verifier: TokenVerifier = request.app.state.token_verifier
    return verifier.verify(credentials.credentials)


def roles(*allowed: Role):
    """Dependency factory: the principal, provided it has one of ``allowed``."""

    def dependency(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        return require_role(principal, *allowed)

    return dependency


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]
ExecutorDep = Annotated[Executor, Depends(get_executor)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
