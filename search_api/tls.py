"""Mutual TLS for the INT_R03 listener: who may connect, and the vendor's certificate reaching the app.

The guide (``securite.md``) asks for mutual TLS 1.2 at least, with the IGC-Santé authority and a check of
the certificate's CN **and** OU; the certification kit also presents revoked certificates. Here:

- ``ClientTrust`` builds the server ``SSLContext``: TLS ≥ 1.2, client certificate required and verified
  against ``SAS_FHIR_TLS_CLIENT_CA`` (chain, validity dates), and against the CRL file
  ``SAS_FHIR_TLS_CLIENT_CRL`` (``VERIFY_CRL_CHECK_LEAF``: a revoked certificate fails the handshake). When
  the CA or CRL file changes on disk, a new context is built and every *new* connection switches to it
  in the handshake's server-name callback (called for every ClientHello, with or without SNI): the
  listener is never restarted, connections in flight are not cut.
- ``PeerCertH11Protocol`` passes the verified certificate to the app (ASGI "tls" extension, which uvicorn
  does not fill) and checks it once more against the current CRL: a TLS session resumed from before a
  revocation carries no new verification.
- CN and OU are checked by the app against ``SAS_FHIR_CLIENT_SUBJECTS`` (``search_api.routes.fhir``), so
  that a certificate of the right authority but the wrong subject gets a 403 OperationOutcome saying so.
Only this listener sets the "tls" extension: a header can never fake it.
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from cryptography import x509
from cryptography.x509.oid import NameOID
from uvicorn.protocols.http.h11_impl import H11Protocol

from sas_core.clock import utcnow
from sas_core.errors import ConfigurationError
from sas_core.settings import Settings

log = logging.getLogger(__name__)
_CRL_PEM_BEGIN = b"-----BEGIN X509 CRL-----"


@dataclass(frozen=True)
class _Loaded:
    stamp: tuple
    context: ssl.SSLContext
    revoked: frozenset[tuple[bytes, int]]     # (issuer name DER, serial) of every revoked certificate


def _stamp(*paths: Path) -> tuple:
    out = []
    for path in paths:
        status = os.stat(path)
        out.append((status.st_mtime_ns, status.st_size, status.st_ino))
    return tuple(out)


def _read_crls(path: Path) -> list[x509.CertificateRevocationList]:
    data = path.read_bytes()
    if _CRL_PEM_BEGIN not in data:
        return [x509.load_der_x509_crl(data)]
    crls = []
    for chunk in data.split(_CRL_PEM_BEGIN)[1:]:   # a file may hold the CRLs of several authorities
        crls.append(x509.load_pem_x509_crl(_CRL_PEM_BEGIN + chunk))
    return crls


class ClientTrust:
    """The TLS side of the INT_R03 listener, rebuilt when the client CA or the CRL file changes."""

    def __init__(self, *, certfile: Path, keyfile: Path, client_ca: Path, crl: Path) -> None:
        self.certfile, self.keyfile = Path(certfile), Path(keyfile)
        self.client_ca, self.crl = Path(client_ca), Path(crl)
        self._lock = threading.Lock()
        self._failed_stamp: tuple | None = None
        # Fails loudly at start-up (ConfigurationError) rather than serving without revocation checks.
        try:
            self._loaded = self._load()
        except (OSError, ValueError, ssl.SSLError) as exc:
            raise ConfigurationError(f"INT_R03 listener TLS material: {exc}") from exc
        self._listening = self._loaded.context
        self._listening.sni_callback = self._switch

    # -- building -----------------------------------------------------------------------------------

    def _context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        # The guide's floor (securite.md: "mTLS (1.2)"), whatever the Python / OpenSSL defaults.
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(str(self.certfile), str(self.keyfile))
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cafile=str(self.client_ca))
        context.load_verify_locations(cafile=str(self.crl))
        context.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
        # No session tickets: a resumed session skips certificate verification (the CRL check of the
        # protocol below covers resumption from the session cache).
        context.options |= ssl.OP_NO_TICKET
        context.num_tickets = 0
        return context

    def _load(self) -> _Loaded:
        stamp = _stamp(self.client_ca, self.crl)
        crls = _read_crls(self.crl)
        now = utcnow()
        for crl in crls:
            if crl.next_update_utc is not None and crl.next_update_utc < now:
                # OpenSSL then refuses every certificate of that authority: say why in the log.
                log.error("the CRL is past its next update: client certificates of %s will be refused until "
                          "it is refreshed", crl.issuer.rfc4514_string(), extra={"crl": str(self.crl)})
        revoked = frozenset((crl.issuer.public_bytes(), entry.serial_number) for crl in crls for entry in crl)
        return _Loaded(stamp=stamp, context=self._context(), revoked=revoked)

    def current(self) -> _Loaded:
        """The material in force, reloaded first when a file changed (a failed reload keeps the last one)."""
        try:
            stamp = _stamp(self.client_ca, self.crl)
        except OSError as exc:
            if self._failed_stamp != ("missing",):
                log.error("INT_R03 CA or CRL file unreadable, keeping the last one loaded: %s", exc)
                self._failed_stamp = ("missing",)
            return self._loaded
        if stamp == self._loaded.stamp or stamp == self._failed_stamp:
            return self._loaded
        with self._lock:
            if stamp == self._loaded.stamp:
                return self._loaded
            try:
                loaded = self._load()
            except (OSError, ValueError, ssl.SSLError) as exc:
                # e.g. a file caught half-written: tried again once it changes again.
                log.error("INT_R03 CA or CRL reload failed, keeping the last one loaded: %s", exc)
                self._failed_stamp = stamp
                return self._loaded
            self._loaded = loaded
            self._failed_stamp = None
            log.info("INT_R03 client CA / CRL reloaded", extra={"revoked": len(loaded.revoked)})
            return loaded

    # -- serving ------------------------------------------------------------------------------------

    def server_context(self) -> ssl.SSLContext:
        """The context the listener is created with (its callback moves connections to the current one)."""
        return self._listening

    def _switch(self, ssl_object, server_name, context) -> None:
        current = self.current().context
        if ssl_object.context is not current:
            ssl_object.context = current

    def is_revoked(self, der: bytes) -> bool:
        certificate = x509.load_der_x509_certificate(der)
        return (certificate.issuer.public_bytes(), certificate.serial_number) in self.current().revoked


class PeerCertH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, adding the ASGI TLS extension with the verified peer certificate.
    ``trust`` (set on the subclass made by ``fhir_server_config``) refuses revoked certificates."""

    trust: ClientTrust | None = None

    def connection_made(self, transport) -> None:
        ssl_object = transport.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        if der is not None and self.trust is not None and self.trust.is_revoked(der):
            log.warning("revoked client certificate refused", extra={
                "serial": format(x509.load_der_x509_certificate(der).serial_number, "x")})
            transport.abort()
            return
        super().connection_made(transport)
        if der is None:
            return
        pem = ssl.DER_cert_to_PEM_cert(der)
        name = x509.load_der_x509_certificate(der).subject.rfc4514_string()
        extension = {"client_cert_chain": [pem], "client_cert_name": name, "client_cert_error": None,
                     "tls_version": ssl_object.version(), "cipher_suite": None, "server_cert": None}
        inner = self.app

        async def app_with_tls(scope: dict[str, Any], receive, send):
            if scope.get("type") in ("http", "websocket"):
                scope.setdefault("extensions", {})["tls"] = extension
            return await inner(scope, receive, send)

        self.app = app_with_tls


@dataclass(frozen=True)
class ClientSubject:
    """CN and OU values of the verified client certificate of a request."""

    cn: str | None
    ous: tuple[str, ...]


def client_cert_subject(scope: Mapping[str, Any]) -> ClientSubject | None:
    """Subject of the verified client certificate of this request; ``None`` without one (not this listener)."""
    tls = (scope.get("extensions") or {}).get("tls") or {}
    chain = tls.get("client_cert_chain") or []
    if not chain:
        return None
    subject = x509.load_pem_x509_certificate(chain[0].encode()).subject
    cns = subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    ous = subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    return ClientSubject(cn=str(cns[0].value) if cns else None, ous=tuple(str(o.value) for o in ous))


def client_cert_cn(scope: Mapping[str, Any]) -> str | None:
    """Common name of the verified client certificate of this request, if any."""
    subject = client_cert_subject(scope)
    return subject.cn if subject is not None else None


def fhir_server_config(app, settings: Settings, *, host: str | None = None, port: int | None = None,
                       log_level: str = "info") -> uvicorn.Config:
    """The uvicorn configuration of the mutual-TLS INT_R03 listener."""
    cert, key, client_ca, crl = (settings.fhir_tls_cert, settings.fhir_tls_key, settings.fhir_tls_client_ca,
                                 settings.fhir_tls_client_crl)
    if not (cert and key and client_ca and crl and settings.fhir_client_subjects):
        required = ("fhir_tls_cert", "fhir_tls_key", "fhir_tls_client_ca", "fhir_tls_client_crl",
                    "fhir_client_subjects")
        missing = [name for name in required if not getattr(settings, name)]
        raise ConfigurationError("the INT_R03 listener needs " + ", ".join(f"SAS_{m.upper()}" for m in missing))
    trust = ClientTrust(certfile=cert, keyfile=key, client_ca=client_ca, crl=crl)
    protocol = type("TrustedPeerCertH11Protocol", (PeerCertH11Protocol,), {"trust": trust})
    return uvicorn.Config(
        app, host=host or settings.fhir_host, port=port or settings.fhir_port, http=protocol,
        # uvicorn still needs the certificate path to know it serves https (scope scheme, Location).
        ssl_certfile=str(settings.fhir_tls_cert), ssl_keyfile=str(settings.fhir_tls_key),
        ssl_context_factory=lambda _config, _default: trust.server_context(),
        log_config=None, log_level=log_level, lifespan="off",
    )
