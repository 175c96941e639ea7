"""Where the platform's own absolute URLs come from (configured, never a request's Host header).

Two answers embed an absolute URL of the platform: the OIDC login's ``redirect_uri`` and the FHIR
``Location`` headers. Built from the request's ``Host`` header, a forged header would send an identity
provider's code, or a vendor's next request, elsewhere. So:

- in OIDC mode (production) ``SAS_PUBLIC_BASE_URL`` is required, an https URL: the app refuses to start
  without it, and those URLs are built from it only;
- ``SAS_ALLOWED_HOSTS`` (optional, any mode) lists the ``Host`` values answered at all (Starlette's
  ``TrustedHostMiddleware``: 400 for any other), for dev set-ups and the mutual-TLS listener, whose
  ``Location`` is its own address.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import FastAPI
from starlette.middleware.trustedhost import TrustedHostMiddleware

from sas_core.errors import ConfigurationError
from sas_core.settings import Settings


def check_public_base_url(settings: Settings) -> None:
    """``ConfigurationError`` when OIDC mode lacks an https ``SAS_PUBLIC_BASE_URL`` (or it is not a URL)."""
    url = settings.public_base_url
    if not url:
        if settings.auth_mode == "oidc":
            raise ConfigurationError(
                "SAS_AUTH_MODE=oidc needs SAS_PUBLIC_BASE_URL, the platform's public https address (e.g. "
                "https://sas.example.fr): the OIDC redirect_uri and FHIR Location headers are built from it, "
                "never from the request's Host header")
        return
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ConfigurationError(f"SAS_PUBLIC_BASE_URL must be an absolute http(s) URL, not {url!r}")
    if settings.auth_mode == "oidc" and parts.scheme != "https":
        raise ConfigurationError(f"SAS_PUBLIC_BASE_URL must be an https URL in OIDC mode, not {url!r}")


def install_host_checks(app: FastAPI, settings: Settings) -> None:
    """Check the public base URL, and answer only the allow-listed ``Host`` values when there is a list."""
    check_public_base_url(settings)
    if settings.allowed_hosts:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=settings.allowed_hosts, www_redirect=False)
