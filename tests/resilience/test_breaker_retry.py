"""A vendor's short outage during a full sweep (issue 14, point 5): the batches that failed while its
circuit breaker was open are retried once it half-opens, within the run's budget, and the run ends
with every batch harvested; an outage longer than the budget ends the run with a catch-up run asked
for, recorded in the run document and scheduled by the scheduler. The budget bounds the waiting, not the
sweep: a sweep longer than the budget with an outage in its middle still ends with every batch harvested,
the vendor's lease kept meanwhile.

Real parts: the harvester, the vendor simulator over HTTP (outage through its admin faults endpoint),
Elasticsearch. Breaker and backoff settings are short so that the test takes seconds.
"""

from __future__ import annotations

import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from apscheduler.schedulers.background import BackgroundScheduler

from bench.common import free_port
from connectors.vendors.config import VendorConfig
from indexer.harvest import Harvester
from indexer.leader import LeaderElection, LeaseLock
from indexer.lifecycle import drop_prefix, setup_indices
from indexer.scheduler import HarvestJobs
from mappings.registry import alias_name
from simulator.app import Simulator
from simulator.roster import rosters_from_offers
from simulator.server import SimulatorThread
from tests.integration.harvest.conftest import town_offers, write_offers
from tests.resilience.conftest import slot_ids

NAME = "res-outage"
PRACTITIONERS = 24
BATCH = 2            # 12 batches: most of them are refused by the open breaker during the outage


@pytest.fixture
def outage_world(es, settings, test_prefix):
    prefix = f"{test_prefix}-out{uuid.uuid4().hex[:4]}"
    world_settings = settings.model_copy(update={"index_prefix": prefix})
    setup_indices(es, prefix=prefix)
    offers = town_offers(NAME, PRACTITIONERS, start=60_000)
    write_offers(es, world_settings, offers)
    port = free_port()
    simulator = Simulator(rosters_from_offers(offers), public_url=f"http://127.0.0.1:{port}", taken_share=0.0)
    thread = SimulatorThread(simulator, port=port).start()
    yield world_settings, thread
    thread.stop()
    drop_prefix(es, prefix=prefix)


def vendor_config(port: int, *, run_budget_s: float) -> VendorConfig:
    # Breaker opens after 2 failures and half-opens 0.5 s later; one attempt per request, so that the
    # breaker (not the per-request retries) is what rides out the outage.
    return VendorConfig(name=NAME, base_url=f"http://127.0.0.1:{port}/{NAME}/fhir", use_cases=["ps"],
                        batch_size=BATCH, concurrency=2, max_attempts=1, backoff_initial_s=0.02,
                        backoff_max_s=0.1, breaker_threshold=2, breaker_reset_s=0.5, timeout_s=2.0,
                        rate_limit_per_s=None, run_budget_s=run_budget_s)


def set_faults(port: int, *, vendor: str = NAME, **faults) -> None:
    httpx.put(f"http://127.0.0.1:{port}/_admin/vendors/{vendor}/faults", json=faults, timeout=5).raise_for_status()


def run_document(es, prefix: str, run_id: str) -> dict:
    return es.get(index=alias_name(prefix, "harvest_runs"), id=run_id)["_source"]


@pytest.mark.timeout(60)
def test_batches_refused_by_the_open_breaker_are_retried_in_the_same_run(es, outage_world):
    world_settings, sim = outage_world
    vendor = vendor_config(sim.port, run_budget_s=20.0)
    harvester = Harvester(es=es, settings=world_settings, vendors=[vendor])
    first = harvester.run(vendor, mode="full")
    assert first["status"] == "success" and first["batches"] == PRACTITIONERS // BATCH, first
    before = slot_ids(es, world_settings.index_prefix, vendor=NAME)
    assert len(before) > 50

    # A 2-second outage that begins as the sweep starts (HTTP 503 on every request).
    set_faults(sim.port, down=True)
    healed = threading.Timer(2.0, lambda: set_faults(sim.port))
    healed.start()
    try:
        began = time.monotonic()
        run = harvester.run(vendor, mode="full")
        elapsed = time.monotonic() - began
    finally:
        healed.cancel()
        set_faults(sim.port)

    assert elapsed >= 1.5, "the run must have waited for the vendor to come back"
    assert run["status"] == "success", run
    assert run["batches"] == PRACTITIONERS // BATCH
    assert run["batches_failed"] == 0
    assert run["batches_retried"] >= PRACTITIONERS // BATCH - 2, "batches refused while the breaker was open"
    assert run["stale_marked"] == 0
    assert run["catch_up_at"] is None
    assert run["deleted"] == 0
    recorded = run_document(es, world_settings.index_prefix, run["id"])
    assert recorded["batches_retried"] == run["batches_retried"] and recorded["status"] == "success"

    # Every slot is still there and fresh: nothing was left stale (and later hidden) by the outage.
    after = slot_ids(es, world_settings.index_prefix, vendor=NAME)
    assert set(before) <= set(after)
    assert all(source["stale_since"] is None for source in after.values())


@pytest.mark.timeout(60)
def test_an_outage_longer_than_the_budget_schedules_a_catch_up_run(es, outage_world):
    world_settings, sim = outage_world
    vendor = vendor_config(sim.port, run_budget_s=1.5)
    harvester = Harvester(es=es, settings=world_settings, vendors=[vendor])
    assert harvester.run(vendor, mode="full")["status"] == "success"

    jobs = HarvestJobs(settings=world_settings, es=es, harvester=harvester,
                       election=LeaderElection(es, prefix=world_settings.index_prefix, ttl_s=30, holder="catch-up"))
    scheduler = BackgroundScheduler(timezone="UTC")
    jobs.register(scheduler)
    scheduler.start(paused=True)           # jobs get their run times, none runs by itself
    try:
        jobs.election.tick()
        assert jobs.election.is_leader
        set_faults(sim.port, down=True)     # down for the whole run
        began = time.monotonic()
        run = jobs.harvest(NAME, "full")
        elapsed = time.monotonic() - began
        set_faults(sim.port)
        assert run is not None
        assert elapsed < 10, "the run keeps to its budget"
        assert run["status"] == "failed" and run["batches_failed"] == run["batches"], run
        assert run["batches_retried"] > 0, "retried while within the budget"
        assert run["stale_marked"] > 0 and run["deleted"] == 0
        catch_up_at = datetime.fromisoformat(run["catch_up_at"].replace("Z", "+00:00"))
        # One breaker reset after the run's end (measured against the run's own end: on a loaded machine the
        # moments after the run may already take longer than the 0.5 s reset, so "in the future" would race).
        ended_at = datetime.fromisoformat(run["ended_at"].replace("Z", "+00:00"))
        assert abs((catch_up_at - ended_at).total_seconds() - vendor.breaker_reset_s) < 0.01
        assert catch_up_at <= datetime.now(timezone.utc) + timedelta(seconds=vendor.breaker_reset_s)
        assert run_document(es, world_settings.index_prefix, run["id"])["catch_up_at"] == run["catch_up_at"]
        job = scheduler.get_job(f"harvest-catchup-full-{NAME}")
        assert job is not None, [j.id for j in scheduler.get_jobs()]
        assert job.args == (NAME, "full")
        assert abs((job.next_run_time - catch_up_at).total_seconds()) < 1
    finally:
        scheduler.shutdown(wait=False)


LONG_NAME = "res-long-sweep"
LONG_PRACTITIONERS = 48   # one per batch: 48 batches at 0.3 s, two at a time, ~7 s of sweep


@pytest.fixture
def long_sweep_world(es, settings, test_prefix):
    prefix = f"{test_prefix}-long{uuid.uuid4().hex[:4]}"
    world_settings = settings.model_copy(update={"index_prefix": prefix})
    setup_indices(es, prefix=prefix)
    offers = town_offers(LONG_NAME, LONG_PRACTITIONERS, start=61_000)
    write_offers(es, world_settings, offers)
    port = free_port()
    simulator = Simulator(rosters_from_offers(offers), public_url=f"http://127.0.0.1:{port}", taken_share=0.0)
    thread = SimulatorThread(simulator, port=port).start()
    yield world_settings, simulator, thread
    thread.stop()
    drop_prefix(es, prefix=prefix)


def agenda_slot_ids(simulator: Simulator, *, start: datetime, end: datetime) -> set[str]:
    """The free slots the simulator offers in [start, end] for the whole roster (the ``ps`` search)."""
    vendor = simulator.vendors[LONG_NAME]
    found: set[str] = set()
    for key in vendor.roster.practitioners:
        agenda = simulator.agenda(vendor, key)
        assert agenda is not None
        found |= {slot.id for slot in simulator.free_slots(vendor, agenda, start.timestamp(), end.timestamp(),
                                                           with_cpts=False)}
    return found


@pytest.mark.timeout(90)
def test_an_outage_in_the_middle_of_a_sweep_longer_than_the_budget_is_waited_out(es, long_sweep_world):
    """The budget bounds the waiting, not the sweep: a sweep that itself lasts longer than the budget,
    whose vendor goes down in its middle for longer than the breaker's reset (two waits), resumes its
    remaining batches and ends ``success`` with every slot the vendor offers harvested and fresh."""
    world_settings, simulator, sim = long_sweep_world
    # Breaker reset 2 s, outage 3 s: the first half-open probe still fails, the second gets through.
    # Budget 5 s of waiting: both waits (2 × 2.05 s) fit, a third would not.
    vendor = VendorConfig(name=LONG_NAME, base_url=f"http://127.0.0.1:{sim.port}/{LONG_NAME}/fhir",
                          use_cases=["ps"], batch_size=1, concurrency=2, max_attempts=1, backoff_initial_s=0.02,
                          backoff_max_s=0.1, breaker_threshold=2, breaker_reset_s=2.0, timeout_s=5.0,
                          rate_limit_per_s=None, run_budget_s=5.0,
                          # One request per batch (the 7-day window asked at once): the outage is placed by
                          # the count of requests the sweep sends, 0.3 s each.
                          max_window_h=168.0)
    harvester = Harvester(es=es, settings=world_settings, vendors=[vendor])
    start = datetime.now(timezone.utc).replace(microsecond=0)
    start = start.replace(minute=0, second=0) + timedelta(hours=1)
    end = start + timedelta(days=7)
    first = harvester.run(vendor, mode="full", start=start, end=end)
    assert first["status"] == "success" and first["batches"] == LONG_PRACTITIONERS, first
    before = slot_ids(es, world_settings.index_prefix, vendor=LONG_NAME)
    assert {source["vendor_slot_id"] for source in before.values()} == agenda_slot_ids(simulator, start=start,
                                                                                       end=end)

    # Patients book one slot of every practitioner at the vendor: only a sweep that really re-reads
    # every batch (those after the outage included) deletes them all.
    vendor_state = simulator.vendors[LONG_NAME]
    booked = []
    for key in vendor_state.roster.practitioners:
        agenda = simulator.agenda(vendor_state, key)
        assert agenda is not None
        slot = next(simulator.free_slots(vendor_state, agenda, start.timestamp(), end.timestamp(), with_cpts=False))
        assert simulator.take(vendor_state, slot.id)
        booked.append(slot.id)
    expected = agenda_slot_ids(simulator, start=start, end=end)
    assert len(expected) == len(before) - LONG_PRACTITIONERS

    set_faults(sim.port, vendor=LONG_NAME, latency_ms=300)   # the sweep alone lasts longer than the budget
    down = threading.Timer(3.0, lambda: set_faults(sim.port, vendor=LONG_NAME, latency_ms=300, down=True))
    healed = threading.Timer(6.0, lambda: set_faults(sim.port, vendor=LONG_NAME, latency_ms=300))
    try:
        began = time.monotonic()
        down.start()
        healed.start()
        run = harvester.run(vendor, mode="full", start=start, end=end)
        elapsed = time.monotonic() - began
    finally:
        down.cancel()
        healed.cancel()
        set_faults(sim.port, vendor=LONG_NAME)

    assert run["status"] == "success", run
    assert run["duration_s"] > vendor.run_budget_s, "the sweep itself lasted longer than the budget"
    assert elapsed < 40, "bounded: the sweep plus its waits"
    assert run["batches"] == LONG_PRACTITIONERS and run["batches_failed"] == 0, run
    assert 0 < run["batches_retried"] < 2 * LONG_PRACTITIONERS, "resumed after the outage, not from the start"
    assert run["catch_up_at"] is None and run["stale_marked"] == 0 and run["deletions_held"] == 0
    assert run["deleted"] == LONG_PRACTITIONERS, "every booked slot deleted: every batch was read"

    after = slot_ids(es, world_settings.index_prefix, vendor=LONG_NAME)
    assert len(after) == len(before) - LONG_PRACTITIONERS
    assert {source["vendor_slot_id"] for source in after.values()} == expected
    assert not set(booked) & {source["vendor_slot_id"] for source in after.values()}
    assert all(source["stale_since"] is None for source in after.values())


@pytest.mark.timeout(60)
def test_the_vendor_lease_is_kept_while_a_sweep_waits_out_an_outage(es, long_sweep_world):
    """The waits of a sweep last longer than the vendor's run lease: the lease is renewed meanwhile, so
    no other scheduler process harvests the vendor during them, and an incremental run does not wait."""
    world_settings, _, sim = long_sweep_world
    world_settings = world_settings.model_copy(update={"harvest_run_lock_ttl_s": 3})
    vendor = VendorConfig(name=LONG_NAME, base_url=f"http://127.0.0.1:{sim.port}/{LONG_NAME}/fhir",
                          use_cases=["ps"], batch_size=1, concurrency=2, max_attempts=1, backoff_initial_s=0.02,
                          backoff_max_s=0.1, breaker_threshold=2, breaker_reset_s=2.0, timeout_s=5.0,
                          rate_limit_per_s=None, run_budget_s=5.0,
                          max_window_h=168.0)   # one request per batch, as above
    harvester = Harvester(es=es, settings=world_settings, vendors=[vendor])
    assert harvester.run(vendor, mode="full")["status"] == "success"
    jobs = HarvestJobs(settings=world_settings, es=es, harvester=harvester,
                       election=LeaderElection(es, prefix=world_settings.index_prefix, ttl_s=30, holder="lease"))
    jobs.election.tick()
    assert jobs.election.is_leader

    # Down for the first 3 s of the run: two waits of ~2 s, more than the 3 s lease; then ~2.4 s of
    # sweep (0.1 s per batch), so that both probes of another process come while the run goes on.
    taken_by_other: list[bool] = []
    probed_at: list[float] = []

    def other_scheduler() -> None:
        other = LeaseLock(es, prefix=world_settings.index_prefix, name=f"harvest-{LONG_NAME}", ttl_s=3,
                          holder="other-process")
        taken_by_other.append(other.acquire())
        probed_at.append(time.monotonic())
        if other.held:
            other.release()

    set_faults(sim.port, vendor=LONG_NAME, latency_ms=100, down=True)
    healed = threading.Timer(3.0, lambda: set_faults(sim.port, vendor=LONG_NAME, latency_ms=100))
    probes = [threading.Timer(delay, other_scheduler) for delay in (3.5, 4.5)]
    try:
        healed.start()
        for probe in probes:
            probe.start()
        run = jobs.harvest(LONG_NAME, "full")
        run_ended = time.monotonic()
        for probe in probes:
            probe.join(timeout=10)
    finally:
        healed.cancel()
        for probe in probes:
            probe.cancel()
        set_faults(sim.port, vendor=LONG_NAME)
    assert run is not None and run["status"] == "success" and run["batches_retried"] > 0, run
    assert run["duration_s"] > 4, "the run waited longer than its lease lasts"
    assert len(probed_at) == 2 and max(probed_at) < run_ended, "both probes came during the run"
    assert taken_by_other == [False, False], "the vendor's lease stayed ours while the sweep waited"

    # An incremental run during an outage does not wait: it ends at once, its slots marked stale.
    set_faults(sim.port, vendor=LONG_NAME, down=True)
    try:
        began = time.monotonic()
        incremental = jobs.harvest(LONG_NAME, "incremental")
        elapsed = time.monotonic() - began
    finally:
        set_faults(sim.port, vendor=LONG_NAME)
    assert incremental is not None and incremental["status"] == "failed", incremental
    assert incremental["batches_retried"] == 0, "an incremental run never waits for the breaker"
    assert incremental["deleted"] == 0 and incremental["catch_up_at"] is None
    assert elapsed < 15
