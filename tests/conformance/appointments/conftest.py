"""The guide's Appointment examples sent to the real INT_R03 listener (the ``sas fhir serve`` app and
uvicorn configuration, mutual TLS with generated certificates) wired to the real Elasticsearch and to
the real RabbitMQ (INT_L02 publication of every orientation change), by two vendors: a practitioners'
agenda (``conf-ps``) and an SOS Médecins agenda (``conf-sos``)."""

from __future__ import annotations

import json
import ssl
import uuid
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest
import yaml

from bench.common import free_port
from mappings.accounts import AccountDoc
from mappings.registry import alias_name
from sas_core.settings import FhirClientSubject
from search_api.routes.fhir import create_fhir_app
from search_api.tls import fhir_server_config
from tests import hub
from tests.conformance.pki import Authority, client_context
from tests.integration.workflow.conftest import ServerThread, bordeaux_offer

FIXTURES = Path(__file__).resolve().parent / "fixtures"
DOCTOR = "810100050075"
REGULATOR = "3456780581/11242343"
SUBJECTS = {"conf-ps": ("sas-client.ps-vendor.test", "111111111111111"),
            "conf-sos": ("sas-client.sos-vendor.test", "222222222222222")}


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


@pytest.fixture(scope="package")
def directory(es, indices, settings):
    """The practitioner of the examples in the directory, and the regulator's account (territory SAS-33)."""
    offer = {**bordeaux_offer(0, vendor="conf-sos"), "id": f"conf-{DOCTOR}", "national_id": DOCTOR}
    es.index(index=alias_name(settings.index_prefix, "offers"), id=offer["id"], document=offer, refresh=True)
    now = datetime.now(timezone.utc)
    account = AccountDoc(id=str(uuid.uuid4()), national_id=REGULATOR, family_name="RICART", given_name="Pauline",
                         email="pauline.ricart@sas33.test", roles=["regulator"], territories=["SAS-33"],
                         created_at=now, updated_at=now).model_dump(mode="json")
    es.index(index=alias_name(settings.index_prefix, "accounts"), id=account["id"], document=account, refresh=True)
    return {"offer": offer, "account": account}


@pytest.fixture(scope="package")
def lrm_messages():
    """What the platform publishes to the Hub (tests/hub.py): ``receive(id, count)`` waits for the
    (routing key, recipient, ``appointment``) of one orientation."""
    with hub.published_messages() as published:
        def receive(orientation_id: str, count: int, timeout_s: float = 15.0) -> list[tuple[str, str, dict]]:
            found = published(lambda m: hub.appointment(m).get("appointmentId") == orientation_id, count, timeout_s)
            return [(key, hub.recipient(m), hub.appointment(m)) for key, m in found]

        yield hub.EXCHANGE, receive


@pytest.fixture(scope="package")
def pki(tmp_path_factory):
    folder = tmp_path_factory.mktemp("appointments-pki")
    ca = Authority(folder, "IGC-Sante test")
    crl = folder / "crl.pem"
    ca.write_crl(crl, [])
    certs = {vendor: ca.issue(vendor, cn=cn, ou=ou) for vendor, (cn, ou) in SUBJECTS.items()}
    return {"ca": ca, "crl": crl, "server": ca.issue("server", cn="sas-fhir.platform.test", server=True),
            "certs": certs}


@pytest.fixture(scope="package")
def listener(pki, settings, es, indices, directory, lrm_messages, tmp_path_factory):
    exchange, _ = lrm_messages
    vendors_path = tmp_path_factory.mktemp("appointments-vendors") / "vendors.yaml"
    vendors_path.write_text(yaml.safe_dump({"vendors": [
        # conf-ps serves the examples' practitioner through its roster (the directory's offer names conf-sos):
        # a vendor reports only its own practitioners' appointments (issue 15, point 6).
        {"name": "conf-ps", "base_url": "https://fhir.ps-vendor.test/sas", "use_cases": ["ps"], "roster": [DOCTOR]},
        {"name": "conf-sos", "base_url": "https://fhir.sos-vendor.test/sas", "use_cases": ["sos"]}]}))
    listener_settings = settings.model_copy(update={
        "vendors_file": vendors_path, "fhir_tls_cert": pki["server"].cert, "fhir_tls_key": pki["server"].key,
        "fhir_tls_client_ca": pki["ca"].cert_path, "fhir_tls_client_crl": pki["crl"],
        "fhir_client_subjects": [FhirClientSubject(vendor=v, cn=cn, ou=ou) for v, (cn, ou) in SUBJECTS.items()],
        **hub.platform_settings(lrm_exchange=exchange)})
    app = create_fhir_app(listener_settings, es=es)
    port = free_port()
    config = fhir_server_config(app, listener_settings, host="127.0.0.1", port=port, log_level="warning")
    with ServerThread(config):
        yield f"https://127.0.0.1:{port}"
    workflow = getattr(app.state, "workflow", None)
    if workflow is not None:
        workflow.publisher.close()


@pytest.fixture(scope="package")
def vendor_client(pki, listener):
    clients: list[httpx.Client] = []

    def make(vendor: str) -> httpx.Client:
        context = client_context(pki["ca"], pki["certs"][vendor], minimum=ssl.TLSVersion.TLSv1_2)
        client = httpx.Client(base_url=listener, verify=context, timeout=15,
                              headers={"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"})
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
