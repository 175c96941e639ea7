"""Mutual TLS for the INT_R03 listener: the vendor's client certificate reaches the app.

uvicorn verifies the client certificate (``ssl_cert_reqs=CERT_REQUIRED`` + ``ssl_ca_certs``): a client
without a certificate, or with one from another CA, fails the TLS handshake and never reaches the app.
uvicorn does not pass the peer certificate to ASGI apps, so ``PeerCertH11Protocol`` adds the ASGI
"tls" extension (``scope["extensions"]["tls"]``: ``client_cert_chain`` in PEM, ``client_cert_name``)
from the TLS transport of each connection. Only this listener sets it: a header can never fake it.
"""

from __future__ import annotations

import ssl
from typing import Any

import uvicorn
from cryptography import x509
from cryptography.x509.oid import NameOID
from uvicorn.protocols.http.h11_impl import H11Protocol

from sas_core.errors import ConfigurationError
from sas_core.settings import Settings


class PeerCertH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, adding the ASGI TLS extension with the verified peer certificate."""

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        if der is None:
            return
        pem = ssl.DER_cert_to_PEM_cert(der)
        name = x509.load_der_x509_certificate(der).subject.rfc4514_string()
        extension = {"client_cert_chain": [pem], "client_cert_name": name, "client_cert_error": None,
                     "tls_version": None, "cipher_suite": None, "server_cert": None}
        inner = self.app

        async def app_with_tls(scope: dict[str, Any], receive, send):
            if scope.get("type") in ("http", "websocket"):
                scope.setdefault("extensions", {})["tls"] = extension
            return await inner(scope, receive, send)

        self.app = app_with_tls


def client_cert_cn(scope: dict[str, Any]) -> str | None:
    """Common name of the verified client certificate of this request, if any."""
    tls = (scope.get("extensions") or {}).get("tls") or {}
    chain = tls.get("client_cert_chain") or []
    if not chain:
        return None
    certificate = x509.load_pem_x509_certificate(chain[0].encode())
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else None


def fhir_server_config(app, settings: Settings, *, host: str | None = None, port: int | None = None,
                       log_level: str = "info") -> uvicorn.Config:
    """The uvicorn configuration of the mutual-TLS INT_R03 listener."""
    missing = [name for name in ("fhir_tls_cert", "fhir_tls_key", "fhir_tls_client_ca") if not getattr(settings, name)]
    if missing:
        raise ConfigurationError("the INT_R03 listener needs " + ", ".join(f"SAS_{m.upper()}" for m in missing))
    return uvicorn.Config(
        app, host=host or settings.fhir_host, port=port or settings.fhir_port, http=PeerCertH11Protocol,
        ssl_certfile=str(settings.fhir_tls_cert), ssl_keyfile=str(settings.fhir_tls_key),
        ssl_ca_certs=str(settings.fhir_tls_client_ca), ssl_cert_reqs=ssl.CERT_REQUIRED,
        log_config=None, log_level=log_level, lifespan="off",
    )
