"""Vendor faults (timeouts, 5xx, malformed bundles, slow answers, TLS failures) during harvests: searches
keep their latency (search never calls vendors) and no indexed slot is lost or wiped.

Method: slots are harvested once from healthy vendors. Then two phases of the same length run the
same searches (a few hundred, sequential, end to end over loopback) while a background thread
harvests every vendor in a loop: first with healthy vendors, then with each vendor failing its own
way. The medians are compared (+20 % allowed); the p95 is reported.
"""

from __future__ import annotations

import httpx
import pytest

from indexer.harvest import Harvester
from tests.resilience.conftest import AGEN, FAULT_VENDORS, World, measure_searches, slot_ids

SEARCHES_PER_PHASE = 300


def harvest_all(harvester: Harvester, world: World) -> list[dict]:
    return [harvester.run(world.vendors[name], mode="incremental") for name in FAULT_VENDORS]


def apply_faults(world: World) -> None:
    world.set_faults("res-timeout", timeout_rate=1.0, timeout_s=3.0)        # no answer within 1 s
    world.set_faults("res-5xx", error_rate=1.0)                             # HTTP 500 on every request
    world.set_faults("res-malformed", malformed_rate=1.0)                   # bundles that are not FHIR
    world.set_faults("res-slow", latency_ms=400)                            # slow, but within the timeout
    # TLS failure: the vendor's certificate is signed by a CA we do not trust.
    world.vendors["res-tls"] = world.vendors["res-tls"].model_copy(
        update={"tls": world.vendors["res-tls"].tls.model_copy(update={"ca": world.tls["other_ca"]})})


@pytest.mark.timeout(150)
def test_vendor_faults_keep_search_latency_and_every_slot(es, world: World, background):
    harvester = Harvester(es=es, settings=world.settings, vendors=list(world.vendors.values()))
    first = harvest_all(harvester, world)
    assert all(run["status"] == "success" and run["upserted"] > 0 for run in first), first
    before = slot_ids(es, world.prefix)
    assert len(before) > 100

    with httpx.Client(base_url=world.api.url, timeout=10) as client:
        measure_searches(client, world.headers, count=30)                   # warm-up (caches, JIT of ES)

        halt = background(lambda: harvest_all(harvester, world))
        healthy = measure_searches(client, world.headers, count=SEARCHES_PER_PHASE)
        healthy_rounds = halt()

        apply_faults(world)
        harvester.vendors = list(world.vendors.values())
        halt = background(lambda: harvest_all(harvester, world))
        faulty = measure_searches(client, world.headers, count=SEARCHES_PER_PHASE)
        faulty_rounds = halt()

    print(f"\nsearch latency, {SEARCHES_PER_PHASE} requests per phase: fault-free median "
          f"{healthy.median * 1000:.1f} ms p95 {healthy.p95 * 1000:.1f} ms ({healthy_rounds} harvest rounds); "
          f"with vendor faults median {faulty.median * 1000:.1f} ms p95 {faulty.p95 * 1000:.1f} ms "
          f"({faulty_rounds} harvest rounds)")
    assert set(healthy.statuses) == {200} and set(faulty.statuses) == {200}
    assert healthy_rounds >= 1 and faulty_rounds >= 1, "the harvests must overlap the searches"
    assert faulty.median <= healthy.median * 1.20, (faulty.median, healthy.median)

    # One more faulty round, synchronously, to read its outcome per vendor.
    outcome = {run["vendor"]: run for run in harvest_all(harvester, world)}
    for name in ("res-timeout", "res-5xx", "res-malformed", "res-tls"):
        assert outcome[name]["status"] == "failed", outcome[name]
        assert outcome[name]["deleted"] == 0
    assert outcome["res-slow"]["status"] == "success"

    # No slot lost or wiped: every slot indexed before is still there; failed vendors' slots are stale.
    after = slot_ids(es, world.prefix)
    assert set(before) <= set(after)
    for slot_id, source in after.items():
        if source["vendor"] in ("res-timeout", "res-5xx", "res-malformed", "res-tls"):
            assert source["stale_since"], slot_id
        else:
            assert source["stale_since"] is None, slot_id

    # The search still shows them while they are fresh enough (stale_after_s), i.e. right now.
    with httpx.Client(base_url=world.api.url, timeout=10) as client:
        answer = client.get("/v1/search", params=AGEN, headers=world.headers)
    assert answer.status_code == 200 and answer.json()["total"] > 0, answer.text
