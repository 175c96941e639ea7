"""A bounded load test of the API over loopback: 2,000 searches from 8 concurrent clients against the
real uvicorn server and the real node, with zero errors; throughput and p95 reported."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from bench.common import percentile
from indexer.harvest import Harvester
from tests.resilience.conftest import AGEN, FAULT_VENDORS, World, slot_ids

REQUESTS = 2000
CLIENTS = 8
#: Search variants (radius, sort, window) so that the load is not one cached answer.
VARIANTS = [dict(AGEN), {**AGEN, "sort": "earliest"}, {**AGEN, "sort": "nearest"}, {**AGEN, "radius_km": 3},
            {**AGEN, "within": "0-4h"}, {"lat": 44.21, "lon": 0.63}]


@pytest.mark.timeout(150)
def test_two_thousand_searches_from_eight_clients_without_error(es, world: World):
    for name in FAULT_VENDORS:
        world.set_faults(name)                       # healthy vendors (another test may have broken them)
    if not slot_ids(es, world.prefix):           # run alone: slots of one vendor are enough
        Harvester(es=es, settings=world.settings, vendors=list(world.vendors.values())).run(
            world.vendors[FAULT_VENDORS[0]], mode="incremental")
    per_client = REQUESTS // CLIENTS

    def client_run(number: int) -> list[tuple[int, float]]:
        results = []
        with httpx.Client(base_url=world.api.url, timeout=30) as client:
            for i in range(per_client):
                params = VARIANTS[(number + i) % len(VARIANTS)]
                started = time.perf_counter()
                response = client.get("/v1/search", params=params, headers=world.headers)
                results.append((response.status_code, time.perf_counter() - started))
        return results

    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        results = [r for batch in pool.map(client_run, range(CLIENTS)) for r in batch]
    elapsed = time.perf_counter() - began
    statuses = [status for status, _ in results]
    latencies = [latency for _, latency in results]
    print(f"\nload: {len(results)} searches, {CLIENTS} clients, {elapsed:.1f}s, {len(results) / elapsed:.0f} req/s, "
          f"p50 {percentile(latencies, 50, method='nearest') * 1000:.0f} ms, "
          f"p95 {percentile(latencies, 95, method='nearest') * 1000:.0f} ms, "
          f"max {max(latencies) * 1000:.0f} ms")
    assert len(results) == REQUESTS
    errors = [s for s in statuses if s != 200]
    assert not errors, f"{len(errors)} errors: {sorted(set(errors))}"
