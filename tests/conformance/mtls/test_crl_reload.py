"""Revocation follows the CRL file while the listener runs (``SAS_FHIR_TLS_CLIENT_CRL`` re-read when it
changes): a certificate accepted a moment ago is refused on its next connection once the CRL lists it,
and accepted again when a later CRL no longer does — the ``sas fhir serve`` process is never restarted."""

from __future__ import annotations

import socket
import ssl

import pytest

from tests.conformance.mtls.conftest import handshake


def test_a_new_crl_applies_to_new_connections_without_restart(listener, pki, client_for):
    ca, crl, certs = pki["ca"], pki["crl"], pki["certs"]
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        assert handshake(listener["port"], client_for("revoked_later", minimum=version, maximum=version))
    try:
        ca.write_crl(crl, [certs["revoked"].serial, certs["revoked_later"].serial])
        for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
                handshake(listener["port"], client_for("revoked_later", minimum=version, maximum=version))
            # The others are untouched by the reload.
            assert handshake(listener["port"], client_for("good", minimum=version, maximum=version))
    finally:
        ca.write_crl(crl, [certs["revoked"].serial])
    assert handshake(listener["port"], client_for("revoked_later"))
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        handshake(listener["port"], client_for("revoked"))


def _resume(port: int, context: ssl.SSLContext, session=None) -> tuple[bytes, object, bool]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        try:
            with context.wrap_socket(raw, server_hostname="127.0.0.1", session=session) as tls:
                tls.sendall(b"GET /fhir/metadata HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                return tls.recv(64), tls.session, tls.session_reused
        except (ssl.SSLError, OSError):
            return b"", None, False


def test_a_resumed_tls_session_does_not_outlive_a_revocation(listener, pki, client_for):
    """TLS 1.2 session resumption skips certificate verification: the listener checks the CRL again on
    every connection, so a session opened before the revocation cannot be resumed after it."""
    ca, crl, certs = pki["ca"], pki["crl"], pki["certs"]
    context = client_for("revoked_later", minimum=ssl.TLSVersion.TLSv1_2, maximum=ssl.TLSVersion.TLSv1_2)
    answer, session, _ = _resume(listener["port"], context)
    assert answer.startswith(b"HTTP/1.1 200")
    # Control: the listener does resume sessions (otherwise the check below would prove nothing).
    answer, session, reused = _resume(listener["port"], context, session)
    assert reused and answer.startswith(b"HTTP/1.1 200")
    try:
        ca.write_crl(crl, [certs["revoked"].serial, certs["revoked_later"].serial])
        answer, _, _ = _resume(listener["port"], context, session)
        assert not answer.startswith(b"HTTP/1.1 200"), answer
    finally:
        ca.write_crl(crl, [certs["revoked"].serial])


def test_an_unreadable_new_crl_keeps_the_last_good_one(listener, pki, client_for):
    """A CRL file replaced by something that is not a CRL (a failed download) does not open the door:
    the last CRL loaded stays in force, and the listener says so in its log."""
    crl = pki["crl"]
    good = crl.read_bytes()
    try:
        scratch = crl.with_suffix(".tmp")
        scratch.write_bytes(b"<html>503 Service Unavailable</html>")
        scratch.replace(crl)
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            handshake(listener["port"], client_for("revoked"))
        assert handshake(listener["port"], client_for("good"))
    finally:
        scratch = crl.with_suffix(".tmp")
        scratch.write_bytes(good)
        scratch.replace(crl)
    assert "reload failed" in listener["log"].read_text()
