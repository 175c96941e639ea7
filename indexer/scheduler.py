"""The background scheduler (APScheduler) that ``sas serve`` / ``sas scheduler`` run beside the API.

Jobs are registered by the capabilities that need them (directory refresh, vendor harvests); each
job gets the settings and an Elasticsearch client, never the API.

Several scheduler processes may run (one per API replica): a leader lease kept in Elasticsearch
(``indexer.leader``) makes only one of them run the jobs, and a per-vendor lease makes sure that one
vendor is never harvested twice at once (scheduled incremental vs full sweep, or ``sas harvest run``).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from apscheduler.events import EVENT_SCHEDULER_SHUTDOWN
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from elasticsearch import Elasticsearch

from indexer.directory import refresh_directory
from indexer.harvest import Harvester, mark_interrupted_runs
from indexer.harvest_workers import HarvestWorkers
from indexer.leader import LeaderElection, LeaseLock
from sas_core.clock import iso, utcnow
from sas_core.settings import DirectorySettings, ElasticsearchSettings, HarvestSettings, Settings

log = logging.getLogger(__name__)

#: Functions that add jobs to a scheduler: ``register(scheduler, settings=..., es=...)``.
JobRegistrar = Callable[..., None]
_REGISTRARS: list[JobRegistrar] = []


def job_registrar(func: JobRegistrar) -> JobRegistrar:
    """Decorator: ``func`` adds its jobs to every scheduler built afterwards."""
    _REGISTRARS.append(func)
    return func


def build_scheduler(*, settings: Settings, es: Elasticsearch) -> BackgroundScheduler:
    """A scheduler with every registered job added (not started)."""
    scheduler = BackgroundScheduler(
        timezone="UTC",
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 60},
        executors={"default": ThreadPoolExecutor(max_workers=settings.harvest_max_parallel_vendors + 2)},
    )
    for register in _REGISTRARS:
        register(scheduler, settings=settings, es=es)
    log.info("scheduler built with %d job(s)", len(scheduler.get_jobs()))
    return scheduler


# --------------------------------------------------------------------------------------------------
# Vendor harvests and the daily directory refresh (leader only)
# --------------------------------------------------------------------------------------------------

class HarvestJobs:
    """The jobs of one scheduler process: leader lease upkeep, per-vendor harvests, directory refresh."""

    def __init__(self, *, settings: Settings, es: Elasticsearch, harvester=None, election=None) -> None:
        self.settings = settings
        self.es = es
        if harvester is None:
            if settings.harvest_worker_processes:
                harvester = HarvestWorkers(settings=settings.slice(HarvestSettings),
                                           connection=settings.slice(ElasticsearchSettings),
                                           processes=settings.harvest_worker_processes)
            else:
                harvester = Harvester(es=es, settings=settings.slice(HarvestSettings))
        self.harvester = harvester
        self.election = election or LeaderElection(es, prefix=settings.index_prefix, ttl_s=settings.leader_lock_ttl_s)
        self.runs: list[dict] = []
        #: Set by ``register``: catch-up runs are added to it.
        self.scheduler: BackgroundScheduler | None = None

    def register(self, scheduler: BackgroundScheduler) -> None:
        ttl = self.settings.leader_lock_ttl_s
        self.scheduler = scheduler
        scheduler.add_job(self.election.tick, "interval", seconds=max(ttl / 3, 0.5), id="leader-lease",
                          name="leader lease", next_run_time=utcnow())
        for vendor in self.harvester.vendors:
            if not vendor.enabled:
                continue
            scheduler.add_job(self.harvest, "interval", minutes=vendor.incremental_every_min,
                              args=[vendor.name, "incremental"], id=f"harvest-incremental-{vendor.name}",
                              name=f"incremental harvest {vendor.name}",
                              # right after the first leader-lease tick
                              next_run_time=utcnow() + timedelta(seconds=min(ttl / 3, 3)))
            scheduler.add_job(self.harvest, "interval", minutes=vendor.full_every_min,
                              args=[vendor.name, "full"], id=f"harvest-full-{vendor.name}",
                              name=f"full sweep {vendor.name}",
                              # soon after start, not one whole interval later (days 3-7 would wait an hour)
                              next_run_time=utcnow() + timedelta(seconds=self.settings.harvest_first_full_delay_s))
        scheduler.add_job(self.refresh_directory, "cron", hour=self.settings.directory_refresh_hour_utc, minute=0,
                          id="directory-refresh", name="daily directory refresh")
        scheduler.add_listener(lambda _event: self.close(), EVENT_SCHEDULER_SHUTDOWN)

    def close(self) -> None:
        """Give up the leader lease and stop the harvest worker processes, if any."""
        self.election.resign()
        close = getattr(self.harvester, "close", None)
        if close is not None:
            close()

    def harvest(self, vendor: str, mode: str) -> dict | None:
        """Harvest ``vendor`` if this process leads and nobody else is harvesting it right now."""
        if not self.election.is_leader:
            return None
        lock = LeaseLock(self.es, prefix=self.settings.index_prefix, name=f"harvest-{vendor}",
                         ttl_s=self.settings.harvest_run_lock_ttl_s,
                         # unique per run: the incremental and full jobs of one process must exclude each other
                         holder=f"{self.election.holder}:{mode}:{uuid.uuid4().hex[:6]}")
        with lock.holding() as got:
            if not got:
                log.info("harvest of %s skipped: already running elsewhere", vendor)
                return None
            if not self.election.is_leader:   # lost leadership while waiting for the vendor lease
                return None
            # We hold the vendor's lease: a run still "running" is one that died without recording its end.
            mark_interrupted_runs(self.es, prefix=self.settings.index_prefix, vendor=vendor)
            document = self.harvester.run(vendor, mode=mode)
            self.runs.append(document)
        self._schedule_catch_up(vendor, mode, document)
        return document

    def _schedule_catch_up(self, vendor: str, mode: str, document: dict) -> None:
        """A run whose budget ran out during an outage names a catch-up time: run it then (one job per
        vendor and mode, replaced by a newer request), not at the next regular sweep."""
        when = document.get("catch_up_at")
        if not when or self.scheduler is None:
            return
        run_date = datetime.fromisoformat(str(when).replace("Z", "+00:00"))
        self.scheduler.add_job(self.harvest, "date", run_date=run_date, args=[vendor, mode],
                               id=f"harvest-catchup-{mode}-{vendor}", name=f"catch-up {mode} {vendor}",
                               replace_existing=True)
        log.info("harvest of %s (%s): catch-up run scheduled at %s", vendor, mode, iso(run_date))

    def refresh_directory(self) -> None:
        """Daily directory refresh (the directory capability's incremental update), leader only."""
        if not self.election.is_leader:
            return
        refresh_directory(es=self.es, settings=self.settings.slice(DirectorySettings))


@job_registrar
def register_harvest_jobs(scheduler: BackgroundScheduler, *, settings: Settings, es: Elasticsearch) -> None:
    """Harvest jobs for every vendor of the vendors file, ``SAS_VENDORS_FILE`` (none when harvesting is off or
    unconfigured)."""
    if not settings.harvest_enabled or settings.vendors_file is None:
        log.info("vendor harvest not scheduled (SAS_HARVEST_ENABLED=false or no SAS_VENDORS_FILE)")
        return
    HarvestJobs(settings=settings, es=es).register(scheduler)
