"""The real INT_R03 listener, started as operators start it (``sas fhir serve`` in its own process,
configured by ``SAS_*`` environment variables), with a PKI generated for the session: an authority
standing for IGC-Santé, the accepted vendor subject (CN + OU), and every certificate the ANS test kit
tries (wrong CN, wrong OU, revoked, no certificate) plus expired and foreign-authority ones."""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from bench.common import free_port
from tests.conformance.pki import Authority, client_context
from tests.conformance.pki import _now as now

VENDOR = "medilib"
GOOD_CN, GOOD_OU = "sas-client.medilib.test", "318751275100020"
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="package")
def pki(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mtls-pki")
    ca, rogue = Authority(folder / "ca", "IGC-Sante test"), Authority(folder / "rogue", "Rogue authority")
    certs = {
        "server": ca.issue("server", cn="sas-fhir.platform.test", server=True),
        "good": ca.issue("good", cn=GOOD_CN, ou=GOOD_OU),
        "wrong_ou": ca.issue("wrong_ou", cn=GOOD_CN, ou="999999999999999"),
        "no_ou": ca.issue("no_ou", cn=GOOD_CN),
        "wrong_cn": ca.issue("wrong_cn", cn="sas-client.intruder.test", ou=GOOD_OU),
        "revoked": ca.issue("revoked", cn=GOOD_CN, ou=GOOD_OU),
        "revoked_later": ca.issue("revoked_later", cn=GOOD_CN, ou=GOOD_OU),
        "expired": ca.issue("expired", cn=GOOD_CN, ou=GOOD_OU, not_before=now() - timedelta(days=400),
                            not_after=now() - timedelta(days=1)),
        "not_yet_valid": ca.issue("not_yet_valid", cn=GOOD_CN, ou=GOOD_OU, not_before=now() + timedelta(days=2),
                                  not_after=now() + timedelta(days=30)),
        "other_ca": rogue.issue("other_ca", cn=GOOD_CN, ou=GOOD_OU),
    }
    crl = folder / "ca" / "crl.pem"
    ca.write_crl(crl, [certs["revoked"].serial])
    return {"ca": ca, "rogue": rogue, "certs": certs, "crl": crl, "folder": folder}


@pytest.fixture(scope="package")
def listener(pki, settings, tmp_path_factory):
    """``https://127.0.0.1:<port>`` of a ``sas fhir serve`` process."""
    folder = tmp_path_factory.mktemp("mtls-listener")
    vendors_path = folder / "vendors.yaml"
    vendors_path.write_text(yaml.safe_dump({"vendors": [
        {"name": VENDOR, "base_url": "https://fhir.medilib.test/sas", "use_cases": ["ps"]},
        {"name": "agendax", "base_url": "https://fhir.agendax.test/sas", "use_cases": ["ps"]}]}))
    port = free_port()
    server = pki["certs"]["server"]
    env = {**os.environ,
           "SAS_INDEX_PREFIX": settings.index_prefix, "SAS_AUTH_MODE": "dev",
           "SAS_DEV_SIGNING_KEY": settings.dev_signing_key.get_secret_value(),
           "SAS_VENDORS_FILE": str(vendors_path), "SAS_LOG_LEVEL": "WARNING",
           "SAS_FHIR_TLS_CERT": str(server.cert), "SAS_FHIR_TLS_KEY": str(server.key),
           "SAS_FHIR_TLS_CLIENT_CA": str(pki["ca"].cert_path), "SAS_FHIR_TLS_CLIENT_CRL": str(pki["crl"]),
           "SAS_FHIR_CLIENT_SUBJECTS": json.dumps([
               {"vendor": VENDOR, "cn": GOOD_CN, "ou": GOOD_OU},
               # Another vendor's subject: its OU is not a wildcard for medilib's CN.
               {"vendor": "agendax", "cn": "sas-client.agendax.test", "ou": "999999999999999"}])}
    log = (folder / "listener.log").open("wb")
    process = subprocess.Popen([str(Path(sys.executable).parent / "sas"), "fhir", "serve", "--host", "127.0.0.1",
                                "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"sas fhir serve exited: {(folder / 'listener.log').read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("sas fhir serve did not listen in time") from None
                time.sleep(0.1)
        yield {"url": f"https://127.0.0.1:{port}", "port": port, "log": folder / "listener.log"}
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def handshake(port: int, context: ssl.SSLContext) -> str:
    """Complete a TLS handshake and one read (TLS 1.3 reports a refused client certificate only after
    the client's Finished): the negotiated version, or the ``ssl.SSLError`` / ``OSError`` raised."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        tls.sendall(b"GET /fhir/metadata HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        answer = tls.recv(64)
        if not answer:
            raise ConnectionAbortedError("the server closed the connection without answering")
        return str(tls.version())


@pytest.fixture(scope="package")
def client_for(pki):
    def make(name: str | None, **kwargs) -> ssl.SSLContext:
        issued = pki["certs"][name] if name else None
        return client_context(pki["ca"], issued, **kwargs)

    return make
