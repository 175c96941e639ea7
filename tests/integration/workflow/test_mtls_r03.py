"""INT_R03 over mutual TLS: the FHIR listener under uvicorn with client-certificate verification
(certificates from a CA generated for the test). Vendors with a certificate of that CA whose CN and OU
are configured (``SAS_FHIR_CLIENT_SUBJECTS``) get in; another CN or OU gets a 403 OperationOutcome; no
certificate, or one from another CA, fails the TLS handshake. (Updated for issue 13: the guide checks the
OU too, and the listener requires a CRL; the full test kit port is in ``tests/conformance/mtls``.)"""

from __future__ import annotations

import json
import ssl
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from bench.common import free_port
from sas_core.settings import FhirClientSubject
from search_api.routes.fhir import create_fhir_app
from search_api.tls import fhir_server_config
from tests.integration.workflow.conftest import ServerThread

DATA = Path(__file__).resolve().parents[2] / "data" / "fhir" / "appointments"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pki")
    ca, rogue_ca = trustme.CA(organization_name="IGC-Santé test"), trustme.CA(organization_name="Rogue")
    server = ca.issue_cert("127.0.0.1", "localhost", common_name="sas-platform")
    server.cert_chain_pems[0].write_to_path(folder / "server.pem")
    server.private_key_pem.write_to_path(folder / "server.key")
    ca.cert_pem.write_to_path(folder / "ca.pem")
    # An empty CRL of the CA, signed with its key (trustme makes none).
    ca_key = serialization.load_pem_private_key(ca.private_key_pem.bytes(), password=None)
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem.bytes())
    now = datetime.now(timezone.utc)
    crl = (x509.CertificateRevocationListBuilder().issuer_name(ca_cert.subject).last_update(now - timedelta(hours=1))
           .next_update(now + timedelta(days=1)).sign(ca_key, hashes.SHA256()))
    (folder / "crl.pem").write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    return {"folder": folder, "ca": ca, "rogue": rogue_ca, "server": server}


@pytest.fixture(scope="module")
def fhir_listener(pki, wf_settings, es, harvested):
    folder = pki["folder"]
    settings = wf_settings.model_copy(update={
        "fhir_tls_cert": folder / "server.pem", "fhir_tls_key": folder / "server.key",
        "fhir_tls_client_ca": folder / "ca.pem", "fhir_tls_client_crl": folder / "crl.pem",
        "fhir_client_subjects": [FhirClientSubject(vendor="medilib", cn="medilib", ou="MEDILIB-SAS"),
                                 FhirClientSubject(vendor="agendax", cn="agendax-prod-01", ou="AGENDAX-SAS")]})
    port = free_port()
    config = fhir_server_config(create_fhir_app(settings, es=es), settings, host="127.0.0.1", port=port,
                                log_level="warning")
    with ServerThread(config):
        yield f"https://127.0.0.1:{port}"


def client(pki, *, issuer=None, common_name: str | None = None, unit: str | None = "expected") -> httpx.Client:
    context = ssl.create_default_context()
    pki["ca"].configure_trust(context)
    if common_name is not None:
        if unit == "expected":
            unit = {"medilib": "MEDILIB-SAS", "agendax-prod-01": "AGENDAX-SAS"}.get(common_name)
        cert = (issuer or pki["ca"]).issue_cert(f"{common_name}.vendors.test", common_name=common_name,
                                                organization_unit_name=unit)
        cert.configure_cert(context)
    return httpx.Client(verify=context, timeout=10, headers={"Content-Type": "application/fhir+json"})


def appointment() -> bytes:
    body = json.loads((DATA / "booked.json").read_text(encoding="utf-8"))
    body["identifier"][0]["value"] = str(uuid.uuid4())
    return json.dumps(body).encode()


def test_vendor_certificate_gets_in(fhir_listener, pki):
    with client(pki, common_name="medilib") as vendor:
        answer = vendor.post(f"{fhir_listener}/fhir/Appointment", content=appointment())
    assert answer.status_code == 201, answer.text
    assert answer.headers["Location"].startswith(f"{fhir_listener}/fhir/Appointment/")
    with client(pki, common_name="agendax-prod-01") as mapped:
        assert mapped.post(f"{fhir_listener}/fhir/Appointment", content=appointment()).status_code == 201


def test_unknown_vendor_cn_or_ou_is_refused_with_an_outcome(fhir_listener, pki):
    for cn, ou in (("somebody-else", "MEDILIB-SAS"), ("medilib", "AGENDAX-SAS"), ("medilib", None)):
        with client(pki, common_name=cn, unit=ou) as stranger:
            answer = stranger.post(f"{fhir_listener}/fhir/Appointment", content=appointment())
        assert answer.status_code == 403 and answer.json()["resourceType"] == "OperationOutcome", (cn, ou)


def test_no_certificate_or_foreign_ca_fails_the_handshake(fhir_listener, pki):
    for make in (lambda: client(pki), lambda: client(pki, issuer=pki["rogue"], common_name="medilib")):
        with make() as intruder, pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
            intruder.post(f"{fhir_listener}/fhir/Appointment", content=appointment())


def test_bearer_tokens_do_not_replace_the_certificate(fhir_listener, pki, token_for):
    with client(pki) as anonymous, pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
        anonymous.post(f"{fhir_listener}/fhir/Appointment", content=appointment(),
                       headers=token_for("vendor", name="medilib"))
