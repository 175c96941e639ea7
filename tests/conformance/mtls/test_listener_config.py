"""``sas fhir serve`` refuses to start without what the guide's checks need: a CRL and the accepted
certificate subjects (CN + OU). It never serves without revocation or subject checks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.common import free_port


@pytest.mark.parametrize("missing", ["SAS_FHIR_TLS_CLIENT_CRL", "SAS_FHIR_CLIENT_SUBJECTS"])
def test_serve_refuses_to_start_without_crl_or_subjects(pki, missing):
    server = pki["certs"]["server"]
    env = {key: value for key, value in os.environ.items() if not key.startswith("SAS_FHIR_")}
    env.update({"SAS_FHIR_TLS_CERT": str(server.cert), "SAS_FHIR_TLS_KEY": str(server.key),
                "SAS_FHIR_TLS_CLIENT_CA": str(pki["ca"].cert_path), "SAS_FHIR_TLS_CLIENT_CRL": str(pki["crl"]),
                "SAS_FHIR_CLIENT_SUBJECTS": '[{"vendor": "medilib", "cn": "a", "ou": "b"}]'})
    del env[missing]
    done = subprocess.run([str(Path(sys.executable).parent / "sas"), "fhir", "serve", "--port", str(free_port())],
                          env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2, done.stdout + done.stderr
    assert missing in done.stdout


def test_serve_refuses_a_crl_that_is_not_one(pki, tmp_path):
    server = pki["certs"]["server"]
    bogus = tmp_path / "crl.pem"
    bogus.write_text("not a CRL")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("SAS_FHIR_")},
           "SAS_FHIR_TLS_CERT": str(server.cert), "SAS_FHIR_TLS_KEY": str(server.key),
           "SAS_FHIR_TLS_CLIENT_CA": str(pki["ca"].cert_path), "SAS_FHIR_TLS_CLIENT_CRL": str(bogus),
           "SAS_FHIR_CLIENT_SUBJECTS": '[{"vendor": "medilib", "cn": "a", "ou": "b"}]'}
    done = subprocess.run([str(Path(sys.executable).parent / "sas"), "fhir", "serve", "--port", str(free_port())],
                          env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "TLS material" in done.stdout
