from __future__ import annotations

import time

import jwt
import pytest

from sas_core.errors import ConfigurationError, Forbidden, Unauthenticated
from sas_core.settings import Settings
from search_api.auth import Role, TokenVerifier, issue_dev_token, require_role


@pytest.fixture()
def settings(tmp_path) -> Settings:
    return Settings(auth_mode="dev", dev_signing_key="unit-test-key", cache_dir=tmp_path)


def test_dev_token_round_trip(settings):
    token = issue_dev_token(settings=settings, roles=["effecteur"], territories=["SAS-47"], sub="u1",
                            national_id="810100050075")
    principal = TokenVerifier(settings).verify(token)
    assert principal.sub == "u1"
    assert principal.roles == {Role.EFFECTEUR}
    assert principal.territories == {"SAS-47"}
    assert principal.national_id == "810100050075"


def test_expired_token_is_refused(settings):
    token = issue_dev_token(settings=settings, roles=["osnp"], territories=[], ttl_s=1)
    settings_no_leeway = settings.model_copy(update={"jwt_leeway_s": 0})
    time.sleep(2.1)
    with pytest.raises(Unauthenticated, match="expired"):
        TokenVerifier(settings_no_leeway).verify(token)


def test_token_signed_with_another_key_is_refused(settings):
    forged = jwt.encode({"sub": "x", "iat": int(time.time()), "exp": int(time.time()) + 60,
                         "iss": "sas-platform-dev", "aud": "sas-platform", "roles": ["admin"]},
                        "another-key", algorithm="HS256")
    with pytest.raises(Unauthenticated):
        TokenVerifier(settings).verify(forged)


def test_unsigned_token_is_refused(settings):
    unsigned = jwt.encode({"sub": "x", "iat": int(time.time()), "exp": int(time.time()) + 60,
                           "iss": "sas-platform-dev", "aud": "sas-platform", "roles": ["admin"]},
                          None, algorithm="none")
    with pytest.raises(Unauthenticated):
        TokenVerifier(settings).verify(unsigned)


def test_wrong_audience_is_refused(settings):
    token = jwt.encode({"sub": "x", "iat": int(time.time()), "exp": int(time.time()) + 60,
                        "iss": "sas-platform-dev", "aud": "someone-else", "roles": ["admin"]},
                       "unit-test-key", algorithm="HS256")
    with pytest.raises(Unauthenticated):
        TokenVerifier(settings).verify(token)


def test_unknown_role_and_bad_territory_are_refused_at_issue(settings):
    with pytest.raises(ValueError):
        issue_dev_token(settings=settings, roles=["superuser"], territories=[])
    with pytest.raises(ValueError):
        issue_dev_token(settings=settings, roles=["osnp"], territories=["92"])


def test_generated_dev_key_is_stable(tmp_path):
    settings = Settings(auth_mode="dev", cache_dir=tmp_path)
    first = issue_dev_token(settings=settings, roles=["osnp"], territories=[])
    assert TokenVerifier(Settings(auth_mode="dev", cache_dir=tmp_path)).verify(first).roles == {Role.OSNP}
    assert (tmp_path / "dev-signing-key").stat().st_mode & 0o077 == 0


def test_require_role():
    from search_api.auth import Principal

    principal = Principal(sub="a", roles=frozenset({Role.OSNP}))
    assert require_role(principal, Role.OSNP, Role.REGULATOR) is principal
    with pytest.raises(Forbidden):
        require_role(principal, Role.ADMIN)


def test_oidc_mode_needs_its_settings():
    with pytest.raises(ConfigurationError):
        TokenVerifier(Settings(auth_mode="oidc"))
    with pytest.raises(ConfigurationError):
        issue_dev_token(settings=Settings(auth_mode="oidc", oidc_issuer="i", oidc_audience="a",
                                          oidc_jwks_url="http://127.0.0.1:1/jwks"), roles=["osnp"], territories=[])
