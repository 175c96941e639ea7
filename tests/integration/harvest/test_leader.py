"""Leases in Elasticsearch: create-by-id, compare-and-set takeover and renewal; two schedulers never
harvest the same vendor at once, and the second takes over when the leader stops."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from itertools import pairwise

from connectors.vendors.config import VendorConfig
from indexer.harvest import Harvester
from indexer.leader import LeaderElection, LeaseLock
from indexer.scheduler import HarvestJobs
from mappings.registry import alias_name
from tests.integration.harvest.conftest import town_offers, write_offers


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(timezone.utc)

    def __call__(self) -> datetime:
        return self.now


def test_lease_create_takeover_and_renewal(es, indices, settings):
    clock = Clock()
    a = LeaseLock(es, prefix=settings.index_prefix, name="test-lease", ttl_s=10, holder="a", clock=clock)
    b = LeaseLock(es, prefix=settings.index_prefix, name="test-lease", ttl_s=10, holder="b", clock=clock)
    assert a.acquire() and a.held
    assert not b.acquire() and not b.held            # held and not expired
    assert a.renew()
    clock.now += timedelta(seconds=11)                 # a stopped renewing: expired
    assert not a.held
    assert b.acquire() and b.held                      # takeover by compare-and-set
    assert not a.renew()                               # a's last write is not the current one any more
    assert not a.acquire()
    doc = es.get(index=alias_name(settings.index_prefix, "locks"), id="test-lease")["_source"]
    assert doc["holder"] == "b"
    b.release()
    assert a.acquire()                                 # released: free again
    a.release()


def test_concurrent_acquire_has_one_winner(es, indices, settings):
    locks = [LeaseLock(es, prefix=settings.index_prefix, name="race", ttl_s=30, holder=f"h{i}") for i in range(6)]
    results: list[bool] = []
    barrier = threading.Barrier(len(locks))

    def contend(lock: LeaseLock) -> None:
        barrier.wait()
        results.append(lock.acquire())

    threads = [threading.Thread(target=contend, args=(lock,)) for lock in locks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 1
    for lock in locks:
        lock.release()


def test_two_schedulers_never_harvest_the_same_vendor_at_once(es, indices, settings, run_simulator):
    name = "leader-vendor"
    offers = town_offers(name, 20, start=7000)
    write_offers(es, settings, offers)
    sim = run_simulator(offers)
    # The simulator answers slowly so that runs last and could overlap if both schedulers harvested.
    import httpx

    httpx.put(f"http://127.0.0.1:{sim.port}/_admin/vendors/{name}/faults", json={"latency_ms": 300}).raise_for_status()
    vendor = VendorConfig(name=name, base_url=f"http://127.0.0.1:{sim.port}/{name}/fhir", use_cases=["ps"],
                          incremental_every_min=0.5 / 60, full_every_min=1.5 / 60, backoff_initial_s=0.01)
    # Lease times well above scheduling hiccups of a loaded 2-core machine; renewal every third.
    fast = settings.model_copy(update={"leader_lock_ttl_s": 6, "harvest_run_lock_ttl_s": 10})
    from apscheduler.schedulers.background import BackgroundScheduler

    processes = []
    for holder in ("process-1", "process-2"):
        jobs = HarvestJobs(settings=fast, es=es, harvester=Harvester(es=es, settings=fast, vendors=[vendor]),
                           election=LeaderElection(es, prefix=fast.index_prefix, ttl_s=6, holder=holder))
        scheduler = BackgroundScheduler(timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1})
        jobs.register(scheduler)
        processes.append((jobs, scheduler))
    for _, scheduler in processes:
        scheduler.start()

    def wait_for(condition, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if condition():
                return True
            time.sleep(0.2)
        return False

    assert wait_for(lambda: sum(len(jobs.runs) for jobs, _ in processes) >= 3, 30)
    leaders = [jobs for jobs, _ in processes if jobs.runs]
    assert len(leaders) == 1, "exactly one scheduler harvested"
    leader = leaders[0]
    follower = next(jobs for jobs, _ in processes if jobs is not leader)
    assert not follower.runs

    # The leader stops cleanly (lease released): the other one takes over.
    leader_scheduler = next(s for jobs, s in processes if jobs is leader)
    leader_scheduler.shutdown(wait=True)
    taken_over = wait_for(lambda: bool(follower.runs), 30)
    follower_scheduler = next(s for jobs, s in processes if jobs is follower)
    follower_scheduler.shutdown(wait=True)
    assert taken_over, "the follower took over"

    es.indices.refresh(index=alias_name(settings.index_prefix, "harvest_runs"))
    runs = es.search(index=alias_name(settings.index_prefix, "harvest_runs"), size=100,
                     query={"term": {"vendor": name}}, sort=[{"started_at": "asc"}])["hits"]["hits"]
    intervals = [(r["_source"]["started_at"], r["_source"]["ended_at"]) for r in runs]
    assert len(intervals) == len(leader.runs) + len(follower.runs)
    for (_, previous_end), (next_start, _) in pairwise(intervals):
        assert previous_end <= next_start, "two harvests of the same vendor overlapped"
