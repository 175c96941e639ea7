"""Freshness tiers against the simulator and Elasticsearch: requests of at most 72 h, a tier's run
deletes only inside its window, a near-term slot taken at the vendor is gone within the near tier's
interval while the far tiers are slow, and a long sweep hands over to the near tier between slices."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from urllib.parse import parse_qsl

import httpx
from apscheduler.schedulers.background import BackgroundScheduler

from connectors.vendors.config import TierConfig
from indexer.harvest import Harvester
from indexer.harvest.window import Window
from indexer.leader import LeaderElection
from indexer.scheduler import HarvestJobs
from mappings.registry import alias_name
from tests.integration.harvest.conftest import town_offers, write_offers
from tests.integration.harvest.test_harvest_semantics import set_faults, vendor_config, vendor_slots
from tests.schedulers import wait_for


def requests_of(sim, name: str) -> list[dict]:
    return httpx.get(f"http://127.0.0.1:{sim.port}/_admin/vendors/{name}/requests").json()


def windows_asked(sim, name: str) -> list[tuple[datetime, datetime]]:
    out = []
    for request in requests_of(sim, name):
        starts = [v for k, v in parse_qsl(request["query"]) if k == "start"]
        low = next(datetime.fromisoformat(v[2:]) for v in starts if v.startswith("ge"))
        high = next(datetime.fromisoformat(v[2:]) for v in starts if v.startswith("le"))
        out.append((low, high))
    return out


def test_a_seven_day_sweep_asks_windows_of_at_most_72_hours(es, indices, settings, run_simulator):
    name = "tier-72h"
    offers = town_offers(name, 30, start=31000)
    write_offers(es, settings, offers)
    sim = run_simulator(offers)
    harvester = Harvester(es=es, settings=settings, vendors=[vendor_config(name, sim.port)])
    run = harvester.run(name, mode="full")
    assert run["status"] == "success"
    asked = windows_asked(sim, name)
    assert len(asked) == run["requests"] >= 2 * 3                    # 2 batches x 3 windows of <= 72 h
    assert len(set(asked)) == 3
    assert max(high - low for low, high in asked) <= timedelta(hours=72)
    assert min(low for low, _ in asked).isoformat()[:19] == run["started_at"][:19]
    assert max(high for _, high in asked) - min(low for low, _ in asked) == timedelta(days=7)
    swept = vendor_slots(es, settings, name)
    # The same slots as one 7-day window would give (nothing lost or doubled at the boundaries).
    one_window = vendor_config(name, sim.port, max_window_h=24 * 8)
    again = Harvester(es=es, settings=settings, vendors=[one_window]).run(one_window, mode="full")
    assert len(set(windows_asked(sim, name)) - set(asked)) == 1      # one more window: the whole 7 days
    assert again["requests"] < run["requests"] and again["read"] == run["read"] and again["deleted"] == 0
    assert set(vendor_slots(es, settings, name)) == set(swept) and len(swept) == run["read"] > 100


def test_a_tier_deletes_only_inside_its_window(es, indices, settings, run_simulator):
    name = "tier-scope"
    offers = town_offers(name, 12, start=32000)
    write_offers(es, settings, offers)
    sim = run_simulator(offers)
    vendor = vendor_config(name, sim.port)
    harvester = Harvester(es=es, settings=settings, vendors=[vendor])
    assert harvester.run(name, mode="full")["status"] == "success"
    slots = vendor_slots(es, settings, name)
    # A tier's window over the middle third of the indexed slots (whatever the day of the week).
    starts = sorted(datetime.fromisoformat(s["start"]) for s in slots.values())
    tier = TierConfig(name="near", start_h=0, end_h=1, every_min=1)
    window = Window.for_tier(tier, now=starts[len(starts) // 3] - timedelta(seconds=30))
    window = Window(window.mode, window.start, (starts[2 * len(starts) // 3] + timedelta(seconds=30)).replace(
        microsecond=0), window.tier)
    at = {i: datetime.fromisoformat(s["start"]) for i, s in slots.items()}     # the vendor's offset kept
    inside = sorted(i for i in slots if window.start < at[i] < window.end)
    before = sorted(i for i in slots if at[i] < window.start)
    after = sorted(i for i in slots if at[i] > window.end)
    assert inside and before and after
    # Taken at the vendor: two in the tier's window, one before it, one after it.
    taken = [inside[0], inside[-1], before[0], after[-1]]
    answer = httpx.post(f"http://127.0.0.1:{sim.port}/_admin/vendors/{name}/take",
                        json={"slot_ids": [t.split(":", 1)[1] for t in taken]}).json()
    assert len(answer["taken"]) == 4
    run = harvester.run(vendor, mode=window.mode, start=window.start, end=window.end)
    assert run["status"] == "success" and run["deleted"] == 2
    left = vendor_slots(es, settings, name)
    assert inside[0] not in left and inside[-1] not in left
    assert before[0] in left and after[-1] in left                   # outside the window: never deleted by it
    assert set(slots) - set(left) == {inside[0], inside[-1]}


def tier_jobs(es, settings, vendor, holder: str, *,
              first_sweep_s: float = 2.5) -> tuple[HarvestJobs, BackgroundScheduler]:
    # The first sweep once the leader lease is taken (its first tick is at once, the near tiers at 2 s).
    fast = settings.model_copy(update={"harvest_first_full_delay_s": first_sweep_s, "leader_lock_ttl_s": 6})
    jobs = HarvestJobs(settings=fast, es=es, harvester=Harvester(es=es, settings=fast, vendors=[vendor]),
                       election=LeaderElection(es, prefix=fast.index_prefix, ttl_s=6, holder=holder))
    scheduler = BackgroundScheduler(timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1})
    jobs.register(scheduler)
    return jobs, scheduler


def test_a_near_term_slot_taken_is_gone_within_the_near_interval(es, indices, settings, run_simulator):
    name = "tier-fresh"
    offers = town_offers(name, 20, start=33000)
    write_offers(es, settings, offers)
    sim = run_simulator(offers)
    # Near tier every 2 s; the rest hourly: only the near tier can make the taken slot go.
    vendor = vendor_config(name, sim.port, tiers=[
        {"name": "near", "start_h": 0, "end_h": 72, "every_min": 2 / 60},
        {"name": "far", "start_h": 72, "end_h": 168, "every_min": 60, "sweep": True}])
    jobs, scheduler = tier_jobs(es, settings, vendor, "tier-fresh")
    scheduler.start()
    try:
        assert wait_for(lambda: {"near", "far"} <= {r.get("tier") for r in jobs.runs}, 30)
        near_runs = len([r for r in jobs.runs if r["tier"] == "near"])
        answer = httpx.post(f"http://127.0.0.1:{sim.port}/_admin/vendors/{name}/take",
                            json={"count": 1, "within_h": 72, "seed": 7}).json()
        (taken,) = answer["taken"]
        taken_at = time.monotonic()
        alias = alias_name(settings.index_prefix, "slots")
        gone = wait_for(lambda: not es.exists(index=alias, id=f"{name}:{taken}"), 15)
        elapsed = time.monotonic() - taken_at
    finally:
        scheduler.shutdown(wait=True)
    assert gone, "the taken slot is still indexed"
    durations = [r["duration_s"] for r in jobs.runs if r["tier"] == "near"]
    # Bound: the near interval + one near run (+ slack for a loaded machine); an hourly tier never ran again.
    assert elapsed <= 2 + max(durations) + 2, (elapsed, durations)
    assert len([r for r in jobs.runs if r["tier"] == "near"]) > near_runs
    assert len([r for r in jobs.runs if r["tier"] == "far"]) == 1


def test_a_long_sweep_hands_over_to_the_near_tier_between_slices(es, indices, settings, run_simulator):
    name = "tier-starve"
    offers = town_offers(name, 30, start=34000)
    write_offers(es, settings, offers)
    sim = run_simulator(offers)
    set_faults(sim, name, latency_ms=400)
    # 3 batches of 10 ids one at a time, 400 ms each: a far slice lasts ~1.2 s, the 4-slice sweep ~5 s,
    # while the near tier is due every second.
    vendor = vendor_config(name, sim.port, batch_size=10, concurrency=1, tiers=[
        {"name": "near", "start_h": 0, "end_h": 4, "every_min": 1 / 60},
        {"name": "far", "start_h": 72, "end_h": 168, "every_min": 60, "sweep": True, "slice_h": 24}])
    jobs, scheduler = tier_jobs(es, settings, vendor, "tier-starve")
    scheduler.start()
    try:
        assert wait_for(lambda: len([r for r in jobs.runs if r.get("tier") == "far"]) >= 4
                        and jobs.runs[-1].get("tier") == "near", 60), [
            (r.get("tier"), r["status"], r["started_at"][11:19]) for r in jobs.runs]
    finally:
        scheduler.shutdown(wait=True)
    order = [r["tier"] for r in jobs.runs]
    far_positions = [i for i, tier in enumerate(order) if tier == "far"][:4]
    # Between consecutive slices of the sweep, the near tier (due meanwhile) ran: it never waited a sweep.
    for a, b in zip(far_positions, far_positions[1:], strict=False):
        assert "near" in order[a + 1:b], order
    # Never two runs of the vendor at once (one lease, one turn).
    spans = sorted((r["started_at"], r["ended_at"]) for r in jobs.runs)
    assert all(prev[1] <= nxt[0] for prev, nxt in zip(spans, spans[1:], strict=False)), spans
    # The four slices cover the far tier's window, none left out.
    slices = [r for r in jobs.runs if r["tier"] == "far"][:4]
    assert all(r["status"] == "success" for r in slices)


def test_a_sliced_sweep_stops_at_an_outage_and_asks_a_catch_up_of_the_whole_tier(es, indices, settings,
                                                                                  run_simulator):
    name = "tier-outage"
    offers = town_offers(name, 5, start=35000)
    write_offers(es, settings, offers)
    sim = run_simulator(offers)
    set_faults(sim, name, down=True)
    vendor = vendor_config(name, sim.port, max_attempts=1, run_budget_s=0, breaker_reset_s=60, tiers=[
        {"name": "near", "start_h": 0, "end_h": 4, "every_min": 60},
        {"name": "far", "start_h": 48, "end_h": 168, "every_min": 60, "sweep": True, "slice_h": 40}])
    jobs, scheduler = tier_jobs(es, settings, vendor, "tier-outage")
    scheduler.start(paused=True)            # jobs registered, none runs by itself
    try:
        jobs.election.tick()
        assert jobs.election.is_leader
        document = jobs.harvest(name, "far")
        catch_up = scheduler.get_job(f"harvest-catchup-far-{name}")
    finally:
        scheduler.shutdown(wait=False)
    assert document is not None and document["status"] == "failed" and document["catch_up_at"]
    # The first of three slices met the outage: the sweep stopped there (the others would fail fast).
    assert [r["tier"] for r in jobs.runs] == ["far"]
    assert catch_up is not None and catch_up.args == (name, "far")
    requested = windows_asked(sim, name)
    assert requested and all(high - low <= timedelta(hours=40) for low, high in requested)


def test_near_tiers_due_back_to_back_do_not_keep_a_queued_sweep_out(es, indices, settings, run_simulator):
    name = "tier-fair"
    offers = town_offers(name, 30, start=36000)
    write_offers(es, settings, offers)
    sim = run_simulator(offers)
    set_faults(sim, name, latency_ms=400)
    # Each run lasts ~1.2 s (3 batches one at a time), longer than the two near tiers' 1 s interval:
    # they are due again whenever the other one runs.
    vendor = vendor_config(name, sim.port, batch_size=10, concurrency=1, tiers=[
        {"name": "near", "start_h": 0, "end_h": 4, "every_min": 1 / 60},
        {"name": "mid", "start_h": 4, "end_h": 48, "every_min": 1 / 60},
        {"name": "far", "start_h": 48, "end_h": 168, "every_min": 60, "sweep": True}])
    jobs, scheduler = tier_jobs(es, settings, vendor, "tier-fair")
    scheduler.start()
    try:
        swept = wait_for(lambda: any(r.get("tier") == "far" for r in jobs.runs), 20)
    finally:
        scheduler.shutdown(wait=True)
    order = [r["tier"] for r in jobs.runs]
    assert swept, order
    # The sweep ran after at most one run of each near tier once it was queued (2.5 s after start).
    assert order.index("far") <= 6, order
