"""Issue 14, point 6: probes answered at once while the API is saturated by slow searches, and searches
beyond the concurrency limit refused at once (503 + Retry-After) instead of queueing.

The real app runs under a real uvicorn; its Elasticsearch is the real node behind a loopback TCP proxy
that delays every request by ``DELAY_S`` (a slow node), so that 150 concurrent searches keep the
request thread pool and the pooled connections busy for seconds.
"""

from __future__ import annotations

import asyncio
import threading
import time
from urllib.parse import urlparse

import httpx
import pytest

from sas_core.es import make_client
from tests.resilience.conftest import AGEN, ApiServer
from tests.slow_proxy import SlowProxy

DELAY_S = 0.3
SEARCHES = 150


@pytest.fixture
def slow_api(settings, indices):
    """``slow_api(**settings)``: the API over the slow proxy, as a context manager."""
    upstream = urlparse(settings.es_url)

    def start(delay_s: float = DELAY_S, **overrides):
        proxy = SlowProxy((upstream.hostname, upstream.port or 9200), delay_s=delay_s).__enter__()
        slow = settings.model_copy(update={"es_url": f"http://127.0.0.1:{proxy.port}", **overrides})
        api = ApiServer(slow, make_client(slow, connections_per_node=40)).__enter__()
        started.append((proxy, api))
        return api

    started: list = []
    yield start
    for proxy, api in started:
        api.__exit__(None, None, None)
        proxy.__exit__(None, None, None)


async def _searches(url: str, headers: dict, count: int) -> list[tuple[httpx.Response, float]]:
    limits = httpx.Limits(max_connections=count + 10, max_keepalive_connections=count + 10)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        async def one() -> tuple[httpx.Response, float]:
            began = time.perf_counter()
            response = await client.get("/v1/search", params=AGEN, headers=headers)
            return response, time.perf_counter() - began

        return await asyncio.gather(*(one() for _ in range(count)))


def _in_background(url: str, headers: dict, count: int) -> tuple[threading.Thread, dict]:
    outcome: dict = {}

    def run() -> None:
        started = time.perf_counter()
        outcome["results"] = asyncio.run(_searches(url, headers, count))
        outcome["statuses"] = [response.status_code for response, _ in outcome["results"]]
        outcome["elapsed"] = time.perf_counter() - started

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


@pytest.mark.timeout(90)
def test_probes_answer_within_half_a_second_while_searches_saturate_the_api(slow_api, token_for):
    api = slow_api(max_concurrent_searches=0, readiness_wait_s=10)
    with httpx.Client(base_url=api.url, timeout=30) as client:
        assert client.get("/readyz").status_code == 200      # first probe (through the slow node)
        thread, outcome = _in_background(api.url, token_for("osnp", territories=["SAS-47"]), SEARCHES)
        time.sleep(1.0)                                      # every pool thread now busy, the rest queued
        timings = {}
        for path in ("/healthz", "/readyz", "/healthz", "/readyz"):
            began = time.perf_counter()
            response = client.get(path)
            timings.setdefault(path, []).append(time.perf_counter() - began)
            assert response.status_code == 200, response.text
        still_searching = thread.is_alive()
        thread.join(timeout=80)
    assert max(max(values) for values in timings.values()) < 0.5, timings
    assert still_searching, "the searches ended before the probes: the API was not saturated"
    assert outcome["statuses"] == [200] * SEARCHES
    assert outcome["elapsed"] > 2.0                      # the load really lasted (slow node, full pool)


@pytest.mark.timeout(90)
def test_searches_beyond_the_limit_get_503_with_retry_after_at_once(slow_api, token_for):
    limit = 20
    api = slow_api(delay_s=1.0, max_concurrent_searches=limit, search_shed_retry_after_s=2)
    headers = token_for("osnp", territories=["SAS-47"])
    thread, outcome = _in_background(api.url, headers, limit)   # exactly the limit, each one slow
    time.sleep(0.5)
    extra = []
    with httpx.Client(base_url=api.url, timeout=30) as client:
        for _ in range(5):
            began = time.perf_counter()
            response = client.get("/v1/search", params=AGEN, headers=headers)
            extra.append((response, time.perf_counter() - began))
        still_searching = thread.is_alive()
        thread.join(timeout=80)
        # Once the load is gone, a search is admitted again: the admissions were released.
        after = client.get("/v1/search", params=AGEN, headers=headers)
    assert still_searching, "the admitted searches ended before the extra ones: nothing was at the limit"
    assert [response.status_code for response, _ in extra] == [503] * 5, [r.text for r, _ in extra]
    assert all(response.headers["Retry-After"] == "2" and response.json()["error"] == "overloaded"
               for response, _ in extra)
    # Refused at once, not after queueing: an admitted search waits at least one 1 s round trip.
    assert max(took for _, took in extra) < 0.25, [took for _, took in extra]
    assert outcome["statuses"] == [200] * limit             # the admitted ones were served
    assert after.status_code == 200, after.text
