"""OIDC authorisation-code flow of the web login (PKCE S256, state checked), hand-rolled with httpx.

The access token the identity provider returns is the bearer token the API already verifies
(``SAS_OIDC_ISSUER`` / ``SAS_OIDC_AUDIENCE`` / ``SAS_OIDC_JWKS_URL``); it goes into the session cookie.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx

from sas_core.errors import BackendUnavailable, BadRequest, ConfigurationError
from sas_core.settings import Settings


@dataclass(frozen=True)
class AuthorizationRequest:
    url: str
    state: str
    verifier: str


def _configured_endpoints(settings: Settings) -> tuple[str, str]:
    """The authorisation and token endpoints; ``ConfigurationError`` naming what is not configured."""
    authorize_url, token_url = settings.oidc_authorize_url, settings.oidc_token_url
    if not (settings.oidc_client_id and authorize_url and token_url):
        missing = [name for name, value in (("SAS_OIDC_CLIENT_ID", settings.oidc_client_id),
                                             ("SAS_OIDC_AUTHORIZE_URL", authorize_url),
                                             ("SAS_OIDC_TOKEN_URL", token_url)) if not value]
        raise ConfigurationError(f"the OIDC web login needs {', '.join(missing)}")
    return authorize_url, token_url


def authorization_request(settings: Settings, *, redirect_uri: str) -> AuthorizationRequest:
    """The identity provider's authorisation URL, with a fresh state and PKCE verifier to keep."""
    authorize_url, _ = _configured_endpoints(settings)
    state = secrets.token_urlsafe(24)
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    params = {"response_type": "code", "client_id": settings.oidc_client_id, "redirect_uri": redirect_uri,
              "scope": settings.oidc_scopes, "state": state, "code_challenge": challenge,
              "code_challenge_method": "S256"}
    separator = "&" if "?" in authorize_url else "?"
    return AuthorizationRequest(url=f"{authorize_url}{separator}{urlencode(params)}", state=state,
                                verifier=verifier)


def exchange_code(settings: Settings, *, code: str, verifier: str, redirect_uri: str,
                  client: httpx.Client | None = None) -> str:
    """Trade the authorisation code for tokens at the token endpoint; return the access token."""
    _, token_url = _configured_endpoints(settings)
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
            "client_id": settings.oidc_client_id, "code_verifier": verifier}
    if settings.oidc_client_secret is not None:
        data["client_secret"] = settings.oidc_client_secret.get_secret_value()
    own = client is None
    client = client or httpx.Client(timeout=10)
    try:
        response = client.post(token_url, data=data, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise BackendUnavailable(f"identity provider unreachable: {exc.__class__.__name__}") from exc
    finally:
        if own:
            client.close()
    if response.status_code >= 500:
        raise BackendUnavailable(f"identity provider answered {response.status_code}")
    try:
        body = response.json()
    except ValueError:
        raise BadRequest(f"token endpoint answered {response.status_code} without JSON") from None
    if response.status_code != 200 or not isinstance(body, dict) or not body.get("access_token"):
        error = body.get("error") if isinstance(body, dict) else None
        raise BadRequest(f"authorisation code refused by the identity provider ({error or response.status_code})")
    return str(body["access_token"])
