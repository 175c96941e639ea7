"""Outbound calls to vendors present the platform's client certificate: INT_R02 account pushes and proxied
appointment creation, against a real local HTTPS server that requires and verifies client certificates
(CA generated at test time with trustme). The harvest (INT_R01) has the same test in
``tests/integration/harvest/test_harvest_semantics.py::test_mutual_tls``."""

from __future__ import annotations

import json
import ssl
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import trustme

from connectors.vendor_appointments import AppointmentError, appointment_resource, create_appointment
from connectors.vendors.config import VendorConfig
from connectors.vendors_accounts import AccountsClient, AccountSyncError, practitioner_resource


class MutualTlsVendor:
    """An HTTPS FHIR endpoint answering 201 to POST/PUT, recording the client certificate's CN."""

    def __init__(self, ca: trustme.CA, folder) -> None:
        self.client_cns: list[str] = []
        vendor = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                subject = dict(x[0] for x in self.connection.getpeercert()["subject"])
                vendor.client_cns.append(subject["commonName"])
                body = json.dumps({"resourceType": "Appointment", "id": "apt-1",
                                   "identifier": [{"system": "urn:vendor", "value": "apt-1"}]}).encode()
                self.send_response(201)
                self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Location", "https://vendor.test/fhir/X/1")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_PUT = _answer

            def log_message(self, *args):
                pass

        server_cert = ca.issue_cert("127.0.0.1", "localhost")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_cert.configure_cert(context)
        ca.configure_trust(context)
        context.verify_mode = ssl.CERT_REQUIRED
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}/fhir"

    def stop(self) -> None:
        self.server.shutdown()


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    folder = tmp_path_factory.mktemp("outbound-pki")
    ca = trustme.CA(organization_name="IGC-Santé test")
    platform = ca.issue_cert("sas-platform.example", common_name="sas-platform")
    rogue = trustme.CA(organization_name="Rogue").issue_cert("sas-platform.example", common_name="sas-platform")
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    for name, cert in (("platform", platform), ("rogue", rogue)):
        cert.cert_chain_pems[0].write_to_path(str(folder / f"{name}.pem"))
        cert.private_key_pem.write_to_path(str(folder / f"{name}.key"))
    server = MutualTlsVendor(ca, folder)
    yield {"folder": folder, "server": server}
    server.stop()


def vendor(pki, client: str | None) -> VendorConfig:
    folder = pki["folder"]
    tls = {"ca": folder / "ca.pem"}
    if client:
        tls |= {"cert": folder / f"{client}.pem", "key": folder / f"{client}.key"}
    return VendorConfig(name="agendax", base_url=pki["server"].url, tls=tls)


ACCOUNT = {"id": "acc-outbound-1", "family_name": "RICART", "given_name": "Pauline", "national_id": "810001234567",
           "roles": ["regulator"], "territories": ["SAS-33"], "active": True}


def test_account_push_presents_the_platform_certificate(pki):
    before = len(pki["server"].client_cns)
    with AccountsClient(vendor(pki, "platform"), attempts=1) as client:
        assert client.upsert(practitioner_resource(ACCOUNT)).status == 201
    assert pki["server"].client_cns[before:] == ["sas-platform"]
    for refused in (vendor(pki, None), vendor(pki, "rogue")):
        with AccountsClient(refused, attempts=1) as client, pytest.raises(AccountSyncError) as caught:
            client.upsert(practitioner_resource(ACCOUNT))
        assert caught.value.reason == "connection_error"


def test_proxied_appointment_presents_the_platform_certificate(pki):
    start = datetime.now(timezone.utc) + timedelta(hours=3)
    resource = appointment_resource(vendor_slot_id="slot-1", start=start, end=start + timedelta(minutes=20),
                                    national_id="810001234567", operator_system="urn:oid:1.2.250.1.71.4.2.1",
                                    operator_value="810009876543", operator_type="IDNPS", patient=None)
    before = len(pki["server"].client_cns)
    outcome = create_appointment(vendor(pki, "platform"), resource, timeout_s=5)
    assert outcome.result == "created" and pki["server"].client_cns[before:] == ["sas-platform"]
    with pytest.raises(AppointmentError) as caught:
        create_appointment(vendor(pki, None), resource, timeout_s=5)
    assert caught.value.reason == "connection_error"
