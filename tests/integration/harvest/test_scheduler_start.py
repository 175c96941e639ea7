"""The first sweep of every vendor comes soon after a scheduler starts, not one whole interval (an hour
by default) later; the near tiers come first."""

from __future__ import annotations

from datetime import datetime, timezone

from apscheduler.schedulers.background import BackgroundScheduler

from connectors.vendors.config import VendorConfig
from indexer.harvest import Harvester
from indexer.leader import LeaderElection
from indexer.scheduler import HarvestJobs


def test_first_full_sweep_is_scheduled_soon_after_start(es, indices, settings):
    vendor = VendorConfig(name="start-vendor", base_url="http://127.0.0.1:9/start-vendor/fhir", roster=["810000000001"])
    assert vendor.tier("far").every_min == 60.0 and settings.harvest_first_full_delay_s == 60.0   # the defaults
    jobs = HarvestJobs(settings=settings, es=es, harvester=Harvester(es=es, settings=settings, vendors=[vendor]),
                       election=LeaderElection(es, prefix=settings.index_prefix, ttl_s=30, holder="start-test"))
    scheduler = BackgroundScheduler(timezone="UTC")
    jobs.register(scheduler)
    started = datetime.now(timezone.utc)
    scheduler.start(paused=True)           # run times computed, nothing runs
    try:
        far = scheduler.get_job("harvest-far-start-vendor")
        delay = (far.next_run_time - started).total_seconds()
        assert 0 < delay <= settings.harvest_first_full_delay_s + 2, delay
        # The near tiers (the next 4 h, 4-48 h) come first, within seconds.
        for tier in ("near", "mid"):
            job = scheduler.get_job(f"harvest-{tier}-start-vendor")
            assert job.next_run_time <= far.next_run_time
            assert (job.next_run_time - started).total_seconds() <= 4
        assert {j.id for j in scheduler.get_jobs() if j.id.startswith("harvest-")} == {
            "harvest-near-start-vendor", "harvest-mid-start-vendor", "harvest-far-start-vendor"}
    finally:
        scheduler.shutdown(wait=False)


def test_first_full_delay_is_a_setting(es, indices, settings):
    quick = settings.model_copy(update={"harvest_first_full_delay_s": 5.0})
    # A vendors file of before the tiers: its two jobs, the full sweep soon after start.
    vendor = VendorConfig(name="start-vendor-2", base_url="http://127.0.0.1:9/x/fhir", roster=["810000000001"],
                          incremental_every_min=2, full_every_min=60)
    jobs = HarvestJobs(settings=quick, es=es, harvester=Harvester(es=es, settings=quick, vendors=[vendor]),
                       election=LeaderElection(es, prefix=quick.index_prefix, ttl_s=30, holder="start-test-2"))
    scheduler = BackgroundScheduler(timezone="UTC")
    jobs.register(scheduler)
    started = datetime.now(timezone.utc)
    scheduler.start(paused=True)
    try:
        delay = (scheduler.get_job("harvest-full-start-vendor-2").next_run_time - started).total_seconds()
        assert 0 < delay <= 5 + 2, delay
        assert scheduler.get_job("harvest-incremental-start-vendor-2").trigger.interval.total_seconds() == 120
    finally:
        scheduler.shutdown(wait=False)
