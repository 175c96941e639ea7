"""The first full sweep of every vendor comes soon after a scheduler starts (issue 14, point 5), not
one whole ``full_every_min`` interval (an hour by default) later."""

from __future__ import annotations

from datetime import datetime, timezone

from apscheduler.schedulers.background import BackgroundScheduler

from connectors.vendors.config import VendorConfig
from indexer.harvest import Harvester
from indexer.leader import LeaderElection
from indexer.scheduler import HarvestJobs


def test_first_full_sweep_is_scheduled_soon_after_start(es, indices, settings):
    vendor = VendorConfig(name="start-vendor", base_url="http://127.0.0.1:9/start-vendor/fhir", roster=["810000000001"])
    assert vendor.full_every_min == 60.0 and settings.harvest_first_full_delay_s == 60.0   # the defaults
    jobs = HarvestJobs(settings=settings, es=es, harvester=Harvester(es=es, settings=settings, vendors=[vendor]),
                       election=LeaderElection(es, prefix=settings.index_prefix, ttl_s=30, holder="start-test"))
    scheduler = BackgroundScheduler(timezone="UTC")
    jobs.register(scheduler)
    started = datetime.now(timezone.utc)
    scheduler.start(paused=True)           # run times computed, nothing runs
    try:
        full = scheduler.get_job("harvest-full-start-vendor")
        incremental = scheduler.get_job("harvest-incremental-start-vendor")
        delay = (full.next_run_time - started).total_seconds()
        assert 0 < delay <= settings.harvest_first_full_delay_s + 2, delay
        # The incremental run (the next 48 h) still comes first, within seconds.
        assert incremental.next_run_time <= full.next_run_time
    finally:
        scheduler.shutdown(wait=False)


def test_first_full_delay_is_a_setting(es, indices, settings):
    quick = settings.model_copy(update={"harvest_first_full_delay_s": 5.0})
    vendor = VendorConfig(name="start-vendor-2", base_url="http://127.0.0.1:9/x/fhir", roster=["810000000001"])
    jobs = HarvestJobs(settings=quick, es=es, harvester=Harvester(es=es, settings=quick, vendors=[vendor]),
                       election=LeaderElection(es, prefix=quick.index_prefix, ttl_s=30, holder="start-test-2"))
    scheduler = BackgroundScheduler(timezone="UTC")
    jobs.register(scheduler)
    started = datetime.now(timezone.utc)
    scheduler.start(paused=True)
    try:
        delay = (scheduler.get_job("harvest-full-start-vendor-2").next_run_time - started).total_seconds()
        assert 0 < delay <= 5 + 2, delay
    finally:
        scheduler.shutdown(wait=False)
