"""API replicas count each other through Elasticsearch (what the rate limits divide by): two apps
serving see two; one stopped cleanly leaves at once; one killed (no goodbye) expires after its ttl."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from search_api.app import create_app
from search_api.executor import Executor
from search_api.replicas import ReplicaRegistry


@pytest.mark.timeout(60)
def test_two_serving_apps_count_two_and_share_the_limit(es, indices, settings):
    shared = settings.model_copy(update={"rate_limit": "10/minute", "api_replica_ttl_s": 3.0,
                                     "rate_limit_split_replicas": True})
    with TestClient(create_app(shared, es=es)) as first:
        services = first.app.state.services
        assert services.replicas.count() == 1
        with TestClient(create_app(shared, es=es)) as second:
            other = second.app.state.services
            assert other.replicas.count() == 2          # its first beat saw the first replica
            services.replicas.beat()
            assert services.replicas.count() == 2
            # Each now allows 5 of the 10 per minute.
            token = {"Authorization": f"Bearer {_token(shared)}"}
            answers = [client.get("/v1/me", headers=token).status_code for _ in range(8) for client in (first, second)]
            assert answers.count(429) == 6 and len(answers) - answers.count(429) == 10
        services.replicas.beat()                        # the second one left on shutdown
        assert services.replicas.count() == 1


@pytest.mark.timeout(60)
def test_a_replica_that_stops_beating_expires_after_its_ttl(es, indices, settings):
    executor = Executor(es=es, prefix=settings.index_prefix)
    alive = ReplicaRegistry(executor=executor, ttl_s=2.0, holder="alive:1:a")
    dead = ReplicaRegistry(executor=executor, ttl_s=2.0, holder="dead:2:b")
    try:
        dead.beat()                                      # then never again: killed
        assert alive.beat() == 2
        time.sleep(2.2)
        assert alive.beat() == 1
    finally:
        executor.delete_if_exists(index="locks", doc_id=alive.doc_id)
        executor.delete_if_exists(index="locks", doc_id=dead.doc_id)


def _token(settings) -> str:
    from search_api.auth import issue_dev_token

    return issue_dev_token(settings=settings, roles=["osnp"], territories=["SAS-47"], sub="spreader")
