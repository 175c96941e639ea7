"""Issue 15, point 11: in OIDC mode the platform's own URLs come from SAS_PUBLIC_BASE_URL, never from the
request's Host header, so ``sas serve`` refuses to start without it, with a message saying what to set."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from sas_cli.main import app
from sas_core.errors import ConfigurationError
from sas_core.settings import Settings
from search_api.hosts import check_public_base_url

OIDC = {"SAS_AUTH_MODE": "oidc", "SAS_OIDC_ISSUER": "https://idp.test", "SAS_OIDC_AUDIENCE": "sas",
        "SAS_OIDC_JWKS_URL": "https://idp.test/jwks"}


def test_sas_serve_refuses_oidc_without_a_public_base_url(monkeypatch, tmp_path):
    for name, value in {**OIDC, "SAS_CACHE_DIR": str(tmp_path), "SAS_INDEX_PREFIX": "tunitserve"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SAS_PUBLIC_BASE_URL", raising=False)
    # an address that cannot be bound: before this fix the command would fail there, not with exit 2
    result = CliRunner().invoke(app, ["serve", "--no-scheduler", "--host", "256.0.0.1"])
    assert result.exit_code == 2, result.output
    assert "SAS_PUBLIC_BASE_URL" in " ".join(result.output.split())


@pytest.mark.parametrize("url", ["sas.example.fr", "https://", "https://sas.example.fr/?x=1", "ftp://sas.example.fr"])
def test_a_public_base_url_is_an_absolute_http_url(url, tmp_path):
    with pytest.raises(ConfigurationError):
        check_public_base_url(Settings(cache_dir=tmp_path, public_base_url=url))


def test_dev_mode_may_go_without(tmp_path):
    check_public_base_url(Settings(cache_dir=tmp_path, auth_mode="dev"))
    check_public_base_url(Settings(cache_dir=tmp_path, auth_mode="dev", public_base_url="http://127.0.0.1:8000"))
