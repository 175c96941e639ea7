"""FastAPI dependencies: settings, the Elasticsearch executor, the authenticated principal.

They are ``async`` on purpose: FastAPI runs every plain ``def`` dependency in the thread pool (one
thread hop each, with its event-loop wake-ups), and a search would otherwise make three such hops
before its own. Only work that may block (a token or API key seen for the first time: key file, JWKS
or Elasticsearch reads) is handed to the thread pool.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from sas_core.errors import Unauthenticated
from sas_core.settings import Settings
from search_api.auth import Principal, Role, require_role
from search_api.executor import Executor

_bearer = HTTPBearer(auto_error=False, description="Bearer token (dev: `sas token`; production: OIDC)")
_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="Integrator API key")


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_executor(request: Request) -> Executor:
    return request.app.state.executor


async def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key_header)] = None,
) -> Principal:
    """The caller, from a valid bearer token or integrator API key (401 otherwise), rate limited (429)."""
    state = request.app.state
    if api_key:
        principal = state.api_keys.cached(api_key) or await run_in_threadpool(state.api_keys.verify, api_key)
    elif credentials is not None and credentials.scheme.lower() == "bearer" and credentials.credentials:
        token = credentials.credentials
        principal = state.token_verifier.cached(token) or await run_in_threadpool(state.token_verifier.verify, token)
    else:
        raise Unauthenticated("missing bearer token or API key")
    # In memory, no I/O: on the event loop.
    state.rate_limiter.check(principal.sub)
    return principal


def roles(*allowed: Role):
    """Dependency factory: the principal, provided it has one of ``allowed``."""

    async def dependency(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        return require_role(principal, *allowed)

    return dependency


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]
ExecutorDep = Annotated[Executor, Depends(get_executor)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
