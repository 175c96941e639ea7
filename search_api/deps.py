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


#: Key of ``scope["state"]`` where ``BodyLimitMiddleware`` leaves the principal it authenticated before
#: letting the body be read (the route then does not verify the credentials a second time).
AUTHENTICATED_PRINCIPAL = "sas.authenticated_principal"


def client_address(scope) -> str | None:
    """The caller's address as the server saw it (uvicorn puts there the ``X-Forwarded-For`` of a proxy
    listed in ``FORWARDED_ALLOW_IPS``, by default 127.0.0.1 only)."""
    client = scope.get("client")
    return client[0] if client else None


async def authenticate(state, *, api_key: str | None, bearer: str | None, address: str | None) -> Principal:
    """The principal of an API key or bearer token, 401 when they are not valid.

    Credentials verified lately come from the verifiers' caches (no I/O, on the event loop). Others are
    verified in the thread pool (Elasticsearch read, key file, JWKS: never on the event loop), unless the
    address has failed too often lately (``SAS_AUTH_FAILURE_LIMIT``): then 429 without checking them.
    Rate limiting per principal is the caller's business (``get_principal``). Every way in that accepts
    these credentials should come through here (or ``authenticate_in_thread``), so that its failures count too."""
    store, credential = _credential_store(state, api_key=api_key, bearer=bearer)
    known = store.cached(credential)
    if known is not None:
        return known
    return await run_in_threadpool(verify_throttled, state, store, credential, address)


def authenticate_in_thread(state, *, api_key: str | None, bearer: str | None, address: str | None) -> Principal:
    """``authenticate`` for callers already off the event loop (the web pages' sync dependencies)."""
    store, credential = _credential_store(state, api_key=api_key, bearer=bearer)
    return verify_throttled(state, store, credential, address)


def verify_throttled(state, store, credential: str, address: str | None) -> Principal:
    """``store.verify(credential)`` (blocking), from the store's cache when verified lately; refused with 429
    unchecked from an address that failed too often lately, each failure counted (against guessing)."""
    known = store.cached(credential)
    if known is not None:
        return known
    throttle = getattr(state, "auth_failures", None)
    if throttle is not None:
        throttle.check(address)
    try:
        return store.verify(credential)
    except Unauthenticated:
        if throttle is not None:
            throttle.failed(address)
        raise


def _credential_store(state, *, api_key: str | None, bearer: str | None):
    if api_key:
        return state.api_keys, api_key
    if bearer:
        return state.token_verifier, bearer
    raise Unauthenticated("missing bearer token or API key")


def bearer_of(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (``None`` for another scheme or none)."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


async def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key_header)] = None,
) -> Principal:
    """The caller, from a valid bearer token or integrator API key (401 otherwise), rate limited (429)."""
    state = request.app.state
    principal = request.scope.get("state", {}).get(AUTHENTICATED_PRINCIPAL)
    if principal is None:
        bearer = (credentials.credentials or None) if credentials is not None \
            and credentials.scheme.lower() == "bearer" else None
        principal = await authenticate(state, api_key=api_key, bearer=bearer, address=client_address(request.scope))
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
