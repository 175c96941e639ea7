"""Shared fixtures. Integration tests run against the real local Elasticsearch (started or reused),
each test session under its own random index prefix, through a client that refuses foreign writes."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from sas_core.settings import Settings


def _base_settings(**overrides) -> Settings:
    return Settings(**overrides)


@pytest.fixture(scope="session")
def test_prefix() -> str:
    """Random index prefix of this test session (``t<hex>``)."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def settings(test_prefix: str, tmp_path_factory) -> Settings:
    """Settings of the test session: random prefix, dev auth with a per-session signing key."""
    return _base_settings(
        index_prefix=test_prefix,
        auth_mode="dev",
        dev_signing_key=f"test-key-{uuid.uuid4().hex}",
        # functional tests call fast and often with one token; the limiter has its own test
        rate_limit="100000/second",
        # the suite sends bad credentials on purpose from one address; the throttle has its own test
        auth_failure_limit="100000/minute",
        # the apps of one test session are not replicas of one deployment (a fixture's app may live while
        # a test builds its own); the tests of the split turn it on (tests/integration/security/test_replica_count.py)
        rate_limit_split_replicas=False,
    )


@pytest.fixture(scope="session")
def es_node(settings: Settings):
    """The real node at SAS_ES_URL, started through `sas es start` logic when it does not answer."""
    from sas_core import local_es

    return local_es.start(settings)


@pytest.fixture(scope="session")
def es(settings: Settings, es_node, test_prefix: str) -> Iterator:
    """A guarded real client; every index of the session's prefix is deleted at the end."""
    from indexer.lifecycle import drop_prefix
    from tests.guard import GuardedElasticsearch

    client = GuardedElasticsearch(settings.es_url, allowed_prefix=test_prefix, request_timeout=60)
    yield client
    if not os.environ.get("SAS_KEEP_TEST_INDICES"):
        drop_prefix(client, prefix=test_prefix)
    client.close()


@pytest.fixture(scope="session")
def indices(es, settings: Settings):
    """Every index and alias of the session's prefix, created once."""
    from indexer.lifecycle import setup_indices

    return setup_indices(es, prefix=settings.index_prefix)


@pytest.fixture(scope="session")
def api(settings: Settings, es, indices):
    """A TestClient of the real app wired to the guarded client."""
    from fastapi.testclient import TestClient

    from search_api.app import create_app

    with TestClient(create_app(settings, es=es)) as client:
        yield client


@pytest.fixture(scope="session")
def token_for(settings: Settings):
    """``token_for("osnp", territories=["SAS-92"])`` → a valid dev bearer header."""
    from search_api.auth import issue_dev_token

    def make(*roles: str, territories: list[str] | None = None, **claims) -> dict[str, str]:
        token = issue_dev_token(settings=settings, roles=list(roles), territories=territories or [], **claims)
        return {"Authorization": f"Bearer {token}"}

    return make


def pytest_collection_modifyitems(config, items):
    for item in items:
        path = str(item.fspath).replace("\\", "/")
        # The conformance tests (tests/conformance) run real listeners against the real node too.
        if "tests/integration" in path or "tests/conformance" in path:
            item.add_marker(pytest.mark.integration)
