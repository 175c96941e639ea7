"""The ANS test kit's mutual-TLS group (``lib/sas_test_kit/mtls_group.rb``), against our INT_R03 listener:
a functional FHIR request with each kind of client certificate. The kit accepts, for a refused
certificate, either a TLS failure or a 4xx answer; here each case says which of the two it must be
(the chain, validity and revocation fail the handshake; CN and OU are answered with a 403
OperationOutcome), so that the check cannot pass by accident."""

from __future__ import annotations

import ssl

import httpx
import pytest

from tests.conformance.mtls.conftest import handshake

TLS_FAILURES = (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError, httpx.WriteError)


def metadata(listener, context: ssl.SSLContext) -> httpx.Response:
    with httpx.Client(verify=context, timeout=10, headers={"Accept": "application/fhir+json"}) as client:
        return client.get(f"{listener['url']}/fhir/metadata")


def test_valid_certificate(listener, client_for):
    answer = metadata(listener, client_for("good"))
    assert answer.status_code == 200, answer.text
    assert answer.json()["resourceType"] == "CapabilityStatement"


@pytest.mark.parametrize("name, expected", [
    ("wrong_cn", "CN 'sas-client.intruder.test'"),
    ("wrong_ou", "OU ['999999999999999']"),
    ("no_ou", "OU []"),
])
def test_wrong_subject_gets_a_403_outcome(listener, client_for, name, expected):
    answer = metadata(listener, client_for(name))
    assert answer.status_code == 403, answer.text
    assert answer.headers["content-type"].startswith("application/fhir+json")
    outcome = answer.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "security" and expected in outcome["issue"][0]["diagnostics"]


@pytest.mark.parametrize("name", ["revoked", "expired", "not_yet_valid", "other_ca", None])
@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_refused_certificates_fail_the_handshake(listener, client_for, name, version):
    """Revoked (listed in the CRL), expired, not yet valid, another authority, no certificate at all: the
    TLS handshake fails, over TLS 1.2 and 1.3 alike (1.3 verifies the client after the server's Finished)."""
    context = client_for(name, minimum=version, maximum=version)
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        handshake(listener["port"], context)
    with pytest.raises(TLS_FAILURES):
        metadata(listener, client_for(name, minimum=version, maximum=version))


def test_the_same_subject_from_a_valid_certificate_still_gets_in(listener, client_for):
    """The revoked and expired certificates carry the accepted CN and OU: what refuses them is the
    revocation and validity check, not the subject."""
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        assert handshake(listener["port"], client_for("good", minimum=version, maximum=version)) == {
            ssl.TLSVersion.TLSv1_2: "TLSv1.2", ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version]


def test_a_bearer_token_does_not_replace_the_certificate(listener, client_for, token_for):
    with httpx.Client(verify=client_for(None), timeout=10) as anonymous, pytest.raises(TLS_FAILURES):
        anonymous.get(f"{listener['url']}/fhir/metadata", headers=token_for("vendor", name="medilib"))
    # With a certificate of the wrong subject, a valid vendor token beside it changes nothing.
    with httpx.Client(verify=client_for("wrong_ou"), timeout=10) as client:
        answer = client.get(f"{listener['url']}/fhir/metadata", headers=token_for("vendor", name="medilib"))
    assert answer.status_code == 403
