"""A certified-like INT_R02 vendor: the simulator served over HTTPS with mutual TLS (a CA generated for the
session signs the server's certificate and the platform's client certificate; plain HTTP is refused), a
client playing the ANS test kit, the guide's four regulator examples as fixtures, and the platform's API
wired to that vendor (real Elasticsearch under the session's guarded prefix)."""

from __future__ import annotations

import copy
import json
import random
import ssl
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trustme
import yaml

from bench.common import free_port
from connectors.vendors.config import TlsConfig, VendorConfig
from simulator.app import Faults, Simulator
from simulator.roster import Roster
from simulator.server import ServerTls, SimulatorThread

FIXTURES = Path(__file__).resolve().parent / "fixtures"
#: ``certif`` is the kit's target; the platform's vendors file lists ``certif`` and ``certif-b``.
VENDORS = ("certif", "certif-b")
RPPS = "urn:oid:1.2.250.1.71.4.2.1"
PLATFORM = "urn:oid:1.2.250.1.213.3.6"


def example(n: int) -> dict:
    """The guide's ``ExamplePractitionerRegul<n>`` (``input/fsh/examples/example-practitioner-regul<n>.fsh``)."""
    return json.loads((FIXTURES / f"practitioner-regul{n}.json").read_text(encoding="utf-8"))


def national_id() -> str:
    """A fresh national id of the examples' structure-based form (``3`` + FINESS ``/`` + local id)."""
    return f"3456780581/{random.randrange(10**7, 10**8)}"


def regulator(*, system: str = RPPS, value: str | None = None, active: bool = True, family: str = "Loridon",
              given: str = "Sébastien", email: str | None = None) -> dict:
    """Example 1 (IDNPS) or 4 (INTRN) with the given values (fresh ones by default)."""
    body = copy.deepcopy(example(1 if system == RPPS else 4))
    body["identifier"][0]["value"] = value or (national_id() if system == RPPS else str(uuid.uuid4()))
    body["active"] = active
    body["name"] = [{"family": family, "given": [given]}]
    body["telecom"] = [{"system": "email", "value": email or f"{uuid.uuid4().hex[:8]}.sebastien.loridon@test.com"}]
    return body


def key(body: dict) -> str:
    identifier = body["identifier"][0]
    return f"{identifier['system']}|{identifier['value']}"


@pytest.fixture(scope="package")
def pki(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("r02-pki")
    ca = trustme.CA(organization_name="IGC-Santé test")
    server = ca.issue_cert("127.0.0.1", "localhost", common_name="vendor.test")
    server.cert_chain_pems[0].write_to_path(folder / "server.pem")
    server.private_key_pem.write_to_path(folder / "server.key")
    platform = ca.issue_cert("sas-platform.test", common_name="sas-platform")
    platform.cert_chain_pems[0].write_to_path(folder / "client.pem")
    platform.private_key_pem.write_to_path(folder / "client.key")
    ca.cert_pem.write_to_path(folder / "ca.pem")
    return {"folder": folder, "ca": ca}


@pytest.fixture(scope="package")
def strict_vendor(pki) -> Iterator[SimulatorThread]:
    folder = pki["folder"]
    port, https_port = free_port(), free_port()
    simulator = Simulator({name: Roster() for name in VENDORS}, public_url=f"https://127.0.0.1:{https_port}",
                          taken_share=0.0)
    for name in VENDORS:
        simulator.vendors[name].faults = Faults(tls_required=True)
    thread = SimulatorThread(simulator, port=port, https_port=https_port, tls=ServerTls(
        cert=folder / "server.pem", key=folder / "server.key", client_ca=folder / "ca.pem")).start()
    yield thread
    thread.stop()


def fhir_base(strict_vendor, vendor: str = "certif") -> str:
    return f"https://127.0.0.1:{strict_vendor.https_port}/{vendor}/fhir"


@pytest.fixture
def kit(strict_vendor, pki) -> Iterator[httpx.Client]:
    """The test kit's HTTP client: mutual TLS, its headers, the vendor's FHIR base."""
    context = ssl.create_default_context()
    pki["ca"].configure_trust(context)
    context.load_cert_chain(pki["folder"] / "client.pem", pki["folder"] / "client.key")
    with httpx.Client(base_url=fhir_base(strict_vendor) + "/", verify=context, timeout=10,
                      headers={"Content-Type": "application/json", "Accept": "application/fhir+json"}) as client:
        yield client


def admin(strict_vendor, method: str, path: str) -> httpx.Response:
    return httpx.request(method, f"http://127.0.0.1:{strict_vendor.port}{path}", timeout=10)


def held(strict_vendor, vendor: str = "certif") -> list[dict]:
    """Every Practitioner the vendor holds (deactivated ones included)."""
    return admin(strict_vendor, "GET", f"/_admin/vendors/{vendor}/practitioners").json()


def holding(strict_vendor, system: str, value: str, vendor: str = "certif") -> list[dict]:
    return [p for p in held(strict_vendor, vendor)
            if any(i.get("system") == system and i.get("value") == value for i in p.get("identifier") or [])]


def received(strict_vendor, vendor: str = "certif") -> list[dict]:
    """What the vendor received: method, query, ``identifier`` parameter, body, answered status."""
    return admin(strict_vendor, "GET", f"/_admin/vendors/{vendor}/practitioner-requests").json()


def vendor_config(strict_vendor, pki, vendor: str = "certif") -> VendorConfig:
    folder = pki["folder"]
    return VendorConfig(name=vendor, base_url=fhir_base(strict_vendor, vendor), tls=TlsConfig(
        cert=folder / "client.pem", key=folder / "client.key", ca=folder / "ca.pem"))


@pytest.fixture(scope="package")
def r02_settings(settings, strict_vendor, pki, tmp_path_factory):
    folder = pki["folder"]
    vendors_path = tmp_path_factory.mktemp("r02-vendors") / "vendors.yaml"
    tls = {"cert": str(folder / "client.pem"), "key": str(folder / "client.key"), "ca": str(folder / "ca.pem")}
    vendors_path.write_text(yaml.safe_dump({"defaults": {"timeout_s": 5, "max_attempts": 1},
                                       "vendors": [{"name": v, "base_url": fhir_base(strict_vendor, v),
                                                    "use_cases": ["ps"], "tls": tls} for v in VENDORS]}))
    return settings.model_copy(update={"vendors_file": vendors_path, "account_sync_attempts": 1})


@pytest.fixture(scope="package")
def r02_api(r02_settings, es, indices):
    from fastapi.testclient import TestClient

    from search_api.app import create_app

    with TestClient(create_app(r02_settings, es=es)) as client:
        yield client
