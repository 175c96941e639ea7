"""N scheduler processes split the vendors (at most ceil(vendors / alive) each, each vendor harvested
by one process at a time); a process killed with ``kill -9`` gives its vendors back within the lease
time plus one tick. Real ``sas scheduler`` processes, real Elasticsearch, the real vendor simulator."""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from itertools import pairwise

import pytest

from connectors.vendors.config import VendorConfig
from indexer.harvest import Harvester
from indexer.leader import LeaderElection
from indexer.scheduler import HarvestJobs
from indexer.vendor_shares import VendorShares, delete_expired_members
from mappings.registry import alias_name
from tests.integration.harvest.conftest import town_offers, write_offers
from tests.schedulers import (
    WriteLatency,
    scheduler_env,
    start_scheduler,
    vendor_owners,
    wait_for,
    write_vendors_file,
)

TTL_S = 6      # renewed every 2 s: a lease tick takes up to a second on this loaded 2-core machine
TICK_S = TTL_S / 3
#: The takeover is itself three Elasticsearch calls (create, get, compare-and-set) and this test polls
#: every 50 ms: the bound adds three times the slowest lease write measured meanwhile (``WriteLatency``).
POLL_S = 0.05
VENDORS = [f"share-{letter}" for letter in "abcd"]


def _runs(es, prefix: str, vendor: str) -> list[dict]:
    alias = alias_name(prefix, "harvest_runs")
    es.indices.refresh(index=alias)
    hits = es.search(index=alias, size=500, query={"term": {"vendor": vendor}},
                     sort=[{"started_at": "asc"}])["hits"]["hits"]
    return [hit["_source"] for hit in hits]


@pytest.fixture(autouse=True)
def _alone_in_the_prefix(es, indices, settings):
    """Each test starts with no other scheduler alive in the session's prefix (module doc of the fixture's
    helper)."""
    _forget_other_members(es, settings.index_prefix)


def _forget_other_members(es, prefix: str) -> None:
    """Delete the membership leases earlier tests of the session left in the prefix (a scheduler of another
    test still counted alive would halve the quotas this test counts on)."""
    locks = alias_name(prefix, "locks")
    es.indices.refresh(index=locks)
    found = es.search(index=locks, body={"size": 1000, "_source": False,
                                         "query": {"prefix": {"id": "scheduler-member-"}}})["hits"]["hits"]
    for hit in found:
        es.options(ignore_status=404).delete(index=locks, id=hit["_id"], refresh=True)


def test_quota_and_stickiness_in_one_process_pair(es, indices, settings):
    """Two processes, four vendors: the first alone takes all four; when the second shows up, the first
    gives back two at its next tick (not the one it is running) and the second takes them."""
    prefix = settings.index_prefix
    first = VendorShares(es, prefix=prefix, holder="first:1:a", ttl_s=30, vendors=[f"q-{i}" for i in range(4)])
    second = VendorShares(es, prefix=prefix, holder="second:2:b", ttl_s=30, vendors=[f"q-{i}" for i in range(4)])
    try:
        assert len(first.tick()) == 4 and first.quota() == 4
        es.indices.refresh(index=alias_name(prefix, "locks"))
        assert second.tick() == []                     # all held: nothing to take, membership written
        es.indices.refresh(index=alias_name(prefix, "locks"))
        kept_running = first.owned()[0]
        first.tick(busy={kept_running})               # two alive now: quota 2, the running vendor kept
        assert first.quota() == 2 and len(first.owned()) == 2 and kept_running in first.owned()
        assert len(second.tick()) == 2
        assert sorted(first.owned() + second.owned()) == [f"q-{i}" for i in range(4)]
        assert not set(first.owned()) & set(second.owned())
        before = first.owned()
        first.tick()
        second.tick()
        assert first.owned() == before                # sticky: nothing moves while both live
        assert not second.claim(before[0])            # held by the other
    finally:
        first.release_all()
        second.release_all()


@pytest.mark.timeout(120)
def test_two_scheduler_processes_split_the_vendors_and_a_killed_one_gives_them_back(
        es, indices, settings, run_simulator, tmp_path):
    prefix = settings.index_prefix
    offers = [offer for i, name in enumerate(VENDORS) for offer in town_offers(name, 3, start=93_000 + 10 * i)]
    write_offers(es, settings, offers)
    sim = run_simulator(offers)
    vendors_file = write_vendors_file(tmp_path / "vendors.yaml", simulator_port=sim.port, names=VENDORS)
    env = scheduler_env(es_url=settings.es_url, prefix=prefix, vendors_file=vendors_file, ttl_s=TTL_S)
    processes = [start_scheduler(env=env, log=tmp_path / f"scheduler-{i}.log") for i in range(2)]
    try:
        # Split: each process owns two of the four vendors (the quota), every vendor owned.
        def split():
            owners = vendor_owners(es, prefix, VENDORS)
            counts = Counter(owners.values())
            return owners if None not in counts and sorted(counts.values()) == [2, 2] else None

        owners = wait_for(split, 40, every_s=0.2)
        logs = "\n".join(p.log.read_text(errors="replace")[-2000:] for p in processes)
        assert owners, f"the vendors were not split 2/2: {vendor_owners(es, prefix, VENDORS)}\n{logs}"
        assert set(owners.values()) == {p.pid for p in processes}
        # Both harvest: every vendor has runs.
        assert wait_for(lambda: all(_runs(es, prefix, v) for v in VENDORS), 30), "a vendor was never harvested"
        time.sleep(2 * TICK_S)
        assert vendor_owners(es, prefix, VENDORS) == owners, "vendors moved while both processes lived"

        victim, survivor = processes
        theirs = [v for v, pid in owners.items() if pid == victim.pid]
        latency = WriteLatency(es, prefix=prefix).start()
        killed_wall = datetime.now(timezone.utc)
        killed_at = victim.kill9()
        taken = wait_for(lambda: all(pid == survivor.pid for pid in vendor_owners(es, prefix, theirs).values()),
                         TTL_S + 10, every_s=0.05)
        takeover_s = time.monotonic() - killed_at
        latency.stop()
        assert taken, f"the survivor did not take {theirs}: {vendor_owners(es, prefix, theirs)}"
        # Within the lease time plus one tick of the survivor (plus the takeover's own writes).
        assert takeover_s <= TTL_S + TICK_S + 3 * latency.worst_s() + POLL_S, (takeover_s, latency.worst_s())

        def harvested_again():
            return all(any(datetime.fromisoformat(r["started_at"].replace("Z", "+00:00")) > killed_wall
                           and r["status"] == "success" for r in _runs(es, prefix, v)) for v in theirs)

        assert wait_for(harvested_again, 20, every_s=0.2), "the survivor never harvested the vendors it took"
        first_run_s = time.monotonic() - killed_at
        print(f"\nslowest lease write meanwhile {latency.worst_s():.2f} s")
        print(f"vendors of the killed scheduler {theirs} taken {takeover_s:.2f} s after kill -9 "
              f"(lease {TTL_S} s, tick {TICK_S:.1f} s); harvested again by {first_run_s:.2f} s")
    finally:
        for process in processes:
            process.stop()
    # Never two runs of one vendor at once, across both processes.
    for vendor in VENDORS:
        runs = _runs(es, prefix, vendor)
        spans = [(r["started_at"], r["ended_at"]) for r in runs if r["ended_at"]]
        for (_, previous_end), (next_start, _) in pairwise(spans):
            assert previous_end <= next_start, f"two harvests of {vendor} overlapped"


def test_a_scheduler_above_its_quota_takes_no_more_vendors(es, indices, settings):
    """The harvest job itself takes a free vendor only within the quota (no vendor grabbing at start-up)."""
    vendors = [VendorConfig(name=f"cap-{i}", base_url="http://127.0.0.1:9/x/fhir", roster=["810000000001"])
               for i in range(4)]
    prefix = settings.index_prefix
    other = VendorShares(es, prefix=prefix, holder="other:3:c", ttl_s=30, vendors=[v.name for v in vendors])
    jobs = HarvestJobs(settings=settings, es=es, harvester=Harvester(es=es, settings=settings, vendors=vendors),
                       election=LeaderElection(es, prefix=prefix, ttl_s=30, holder="capped:4:d"))
    try:
        other.tick()                                        # the other process: alive, owns nothing yet
        other.release_all()
        other.member.acquire()                              # ...but stays a member
        es.indices.refresh(index=alias_name(prefix, "locks"))
        assert jobs.share_vendors() and jobs.shares.quota() == 2
        assert len(jobs.shares.owned()) == 2
        left = sorted({v.name for v in vendors} - set(jobs.shares.owned()))
        assert not jobs.shares.claim(left[0])              # the quota is full
        assert jobs.harvest(left[0], "near") is None        # so its harvest is not ours to run
        assert not _runs(es, prefix, left[0])
    finally:
        jobs.close()
        other.release_all()


def test_the_leader_deletes_memberships_expired_long_ago_and_keeps_the_live_ones(es, indices, settings):
    prefix = settings.index_prefix
    past = datetime.now(timezone.utc) - timedelta(days=2)
    gone = VendorShares(es, prefix=prefix, holder="gone:5:e", ttl_s=30, vendors=[], clock=lambda: past)
    live = VendorShares(es, prefix=prefix, holder="live:6:f", ttl_s=30, vendors=[])
    gone.tick()                                             # written two days ago, never renewed since
    live.tick()
    es.indices.refresh(index=alias_name(prefix, "locks"))
    assert delete_expired_members(es, prefix=prefix, older_than_s=24 * 3600) >= 1
    locks = alias_name(prefix, "locks")
    assert not es.exists(index=locks, id="scheduler-member-gone:5:e")
    assert es.exists(index=locks, id="scheduler-member-live:6:f")
    live.release_all()
