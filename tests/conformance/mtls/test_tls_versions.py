"""The ANS test kit's TLS version test (``tls_version_test.rb`` as configured by ``tls_test_suite.rb``:
minimum allowed TLS 1.2): every version below is refused, 1.2 and 1.3 are accepted.

The legacy probes first prove themselves against a stdlib TLS server that does allow TLS 1.0 and 1.1
(OpenSSL 3 refuses those versions by default on the client side too, which would make a refusal
meaningless)."""

from __future__ import annotations

import socket
import ssl
import threading

import pytest

from tests.conformance.mtls.conftest import handshake

LEGACY = [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1]


@pytest.fixture(scope="module")
def permissive_server(pki):
    """A plain TLS echo server accepting TLS 1.0 → 1.3 with a client certificate of the same CA."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    context.load_cert_chain(str(pki["certs"]["server"].cert), str(pki["certs"]["server"].key))
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cafile=str(pki["ca"].cert_path))
    listening = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        listening.settimeout(0.2)
        while not stop.is_set():
            try:
                raw, _ = listening.accept()
            except OSError:
                continue
            try:
                with context.wrap_socket(raw, server_side=True) as tls:
                    tls.recv(1024)
                    tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            except (ssl.SSLError, OSError):
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listening.getsockname()[1]
    stop.set()
    thread.join(timeout=5)
    listening.close()


@pytest.mark.parametrize("version", LEGACY, ids=["TLSv1.0", "TLSv1.1"])
def test_legacy_versions_are_refused(listener, permissive_server, client_for, version):
    probe = client_for("good", minimum=version, maximum=version, legacy=True)
    assert handshake(permissive_server, probe) == {ssl.TLSVersion.TLSv1: "TLSv1",
                                                   ssl.TLSVersion.TLSv1_1: "TLSv1.1"}[version]
    with pytest.raises(ssl.SSLError):
        handshake(listener["port"], client_for("good", minimum=version, maximum=version, legacy=True))


@pytest.mark.parametrize("version, name", [(ssl.TLSVersion.TLSv1_2, "TLSv1.2"), (ssl.TLSVersion.TLSv1_3, "TLSv1.3")])
def test_tls_1_2_and_1_3_are_accepted(listener, client_for, version, name):
    assert handshake(listener["port"], client_for("good", minimum=version, maximum=version)) == name


def test_a_client_offering_every_version_gets_a_modern_one(listener, client_for):
    assert handshake(listener["port"], client_for("good", legacy=True)) in ("TLSv1.2", "TLSv1.3")
