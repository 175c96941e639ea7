"""The background scheduler (APScheduler) that ``sas serve`` / ``sas scheduler`` run beside the API.

Jobs are registered by the capabilities that need them (directory refresh, vendor harvests); each
job gets the settings and an Elasticsearch client, never the API.

Several scheduler processes may run (one per API replica, or harvester hosts of their own): they
split the vendors between them (``indexer.vendor_shares``: an ownership lease per vendor, at most
``ceil(vendors / alive processes)`` each, kept while alive), and a per-run lease ``harvest-<vendor>``
makes sure that one vendor is never harvested twice at once (two freshness tiers, a previous owner's
run still in flight, or ``sas harvest run``). The jobs that must run once for the whole platform (the
daily directory refresh, the clean-up of the locks index) run on the leader only (``indexer.leader``).

Each vendor has freshness tiers (``VendorConfig.schedule_tiers``: the next 4 h every 30 s, 4-48 h every
10 min, 48 h-7 days hourly by default), one interval job each. The tiers of a vendor share its lease; a
tier due while another of the vendor's runs is queued, not dropped, and the running one hands over to
the queued nearer tiers between its slices (a long sweep runs as slices of ``slice_h`` hours): a
near-term run waits one slice at most, never a whole sweep.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from apscheduler.events import EVENT_SCHEDULER_SHUTDOWN
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from elasticsearch import Elasticsearch

from connectors.vendors.config import TierConfig, VendorConfig
from indexer.directory import refresh_directory
from indexer.harvest import Harvester, mark_interrupted_runs
from indexer.harvest.window import Window
from indexer.harvest_workers import HarvestWorkers
from indexer.leader import LeaderElection, LeaseLock
from indexer.vendor_shares import VendorShares, delete_expired_members
from sas_core.clock import iso, utcnow
from sas_core.settings import DirectorySettings, ElasticsearchSettings, HarvestSettings, Settings

log = logging.getLogger(__name__)

#: The APScheduler executor of the lease ticks (their own threads).
LEASES_EXECUTOR = "leases"
#: How often the leader cleans the locks index up.
HOUSEKEEPING_EVERY_MIN = 60

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
# Vendor harvests (the vendors this process owns) and the daily directory refresh (leader only)
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
        #: The vendors this process harvests: the same lease time as the leadership (renewed by the same
        #: kind of tick), so a dead process gives its vendors back as fast as its leadership.
        self.shares = VendorShares(es, prefix=settings.index_prefix, holder=self.election.holder,
                                   ttl_s=settings.leader_lock_ttl_s,
                                   vendors=[v.name for v in self.harvester.vendors if v.enabled])
        self.runs: list[dict] = []
        #: Set by ``register``: catch-up runs are added to it.
        self.scheduler: BackgroundScheduler | None = None
        #: Vendor -> tiers running in this process (the innermost first), and the tiers queued behind them.
        self._turns = threading.Lock()
        self._running: dict[str, list[str]] = {}
        self._queued: dict[str, dict[str, TierConfig]] = {}

    def register(self, scheduler: BackgroundScheduler) -> None:
        ttl = self.settings.leader_lock_ttl_s
        self.scheduler = scheduler
        # The leases have their own threads: harvests filling the default pool must not delay their
        # renewal (an unrenewed lease hands the leadership or the vendors to another process).
        try:
            scheduler.add_executor(ThreadPoolExecutor(max_workers=2), alias=LEASES_EXECUTOR)
        except ValueError:
            pass    # a scheduler built with it already
        scheduler.add_job(self.election.tick, "interval", seconds=max(ttl / 3, 0.5), id="leader-lease",
                          name="leader lease", next_run_time=utcnow(), executor=LEASES_EXECUTOR)
        scheduler.add_job(self.share_vendors, "interval", seconds=max(ttl / 3, 0.5), id="vendor-leases",
                          name="vendor leases", next_run_time=utcnow(), executor=LEASES_EXECUTOR)
        scheduler.add_job(self.housekeeping, "interval", minutes=HOUSEKEEPING_EVERY_MIN, id="locks-housekeeping",
                          name="locks housekeeping (leader)")
        for vendor in self.harvester.vendors:
            if not vendor.enabled:
                continue
            for tier in vendor.schedule_tiers:
                # Sweeps soon after start, not one whole interval later (days 3-7 would wait an hour);
                # the near tiers right after the first leader-lease tick.
                first = (self.settings.harvest_first_full_delay_s if tier.sweep else min(ttl / 3, 3))
                scheduler.add_job(self.harvest, "interval", minutes=tier.every_min, args=[vendor.name, tier.name],
                                  id=f"harvest-{tier.name}-{vendor.name}", name=f"{tier.name} harvest {vendor.name}",
                                  next_run_time=utcnow() + timedelta(seconds=first),
                                  # The thread of a tier's job may be running the vendor's other tiers
                                  # (queued behind it): a second instance lets the tier's next tick queue
                                  # itself instead of being dropped. Two runs of one tier never overlap
                                  # (``harvest`` does not queue a tier already running).
                                  max_instances=2)
        scheduler.add_job(self.refresh_directory, "cron", hour=self.settings.directory_refresh_hour_utc, minute=0,
                          id="directory-refresh", name="daily directory refresh")
        scheduler.add_listener(lambda _event: self.close(), EVENT_SCHEDULER_SHUTDOWN)

    def share_vendors(self) -> list[str]:
        """The ``vendor-leases`` tick: renew our vendors, take free ones up to our quota, give back idle
        ones above it (``VendorShares.tick``). Returns the vendors taken."""
        with self._turns:
            busy = set(self._running)
        return self.shares.tick(busy=busy)

    def housekeeping(self) -> None:
        """Leader only: delete the membership leases of processes gone for a day (one per restart)."""
        if not self.election.is_leader:
            return
        deleted = delete_expired_members(self.es, prefix=self.settings.index_prefix, older_than_s=24 * 3600)
        if deleted:
            log.info("locks housekeeping: %d expired scheduler membership(s) deleted", deleted)

    def close(self) -> None:
        """Give up the vendors and the leader lease, stop the harvest worker processes, if any."""
        self.shares.release_all()
        self.election.resign()
        close = getattr(self.harvester, "close", None)
        if close is not None:
            close()

    def harvest(self, vendor: str, tier: str) -> dict | None:
        """Harvest ``vendor``'s tier ``tier`` (a tier name, or the legacy ``incremental`` / ``full``) if
        this process owns the vendor (or may take it now: free and within its quota) and nobody else is
        harvesting it right now. While another tier of the vendor runs in this process, the tier is
        queued: the running one runs it between its slices or right after it ends (nearest first).
        Returns the last run's document (``None``: skipped or queued)."""
        config = self.harvester.vendor(vendor)
        wanted = config.tier(tier)
        if not self.shares.claim(vendor):
            return None     # another process harvests it (or our quota is full)
        with self._turns:
            if vendor in self._running:
                if wanted.name not in self._running[vendor]:
                    self._queued.setdefault(vendor, {})[wanted.name] = wanted
                    log.info("harvest of %s (%s) queued behind %s", vendor, wanted.name, self._running[vendor])
                return None
            self._running[vendor] = []      # busy from now on (``_run_tier`` names the tier)
        document: dict | None = None
        try:
            document = self._run_tier(config, wanted)
        finally:
            # Nearest first, but a tier that already ran in this turn goes after the others still
            # waiting: a near tier due again at once must not keep a queued sweep out forever.
            done = {wanted.name}
            while (queued := self._next_queued(config, before=None, ran=done)) is not None:
                done.add(queued.name)
                try:
                    document = self._run_tier(config, queued)
                except Exception:  # noqa: BLE001 - a queued tier's failure must not keep the vendor busy
                    log.exception("queued harvest of %s (%s) failed", vendor, queued.name)
        return document

    def _next_queued(self, vendor: VendorConfig, *, before: TierConfig | None,
                     ran: frozenset[str] | set[str] = frozenset()) -> TierConfig | None:
        """The nearest queued tier of ``vendor`` (only those nearer than ``before`` when given; those not
        in ``ran`` first), taken off the queue; at the end (``before=None``) an empty queue frees the
        vendor, atomically."""
        order = [t.name for t in vendor.schedule_tiers]
        with self._turns:
            queued = self._queued.get(vendor.name) or {}
            rank = {name: order.index(name) if name in order else len(order) for name in queued}
            candidates = sorted(queued, key=lambda name: (name in ran, rank[name]))
            if before is not None:
                limit = order.index(before.name) if before.name in order else len(order)
                candidates = [name for name in candidates if rank[name] < limit]
            if not candidates:
                if before is None:
                    self._running.pop(vendor.name, None)
                    self._queued.pop(vendor.name, None)
                return None
            return queued.pop(candidates[0])

    def _run_tier(self, vendor: VendorConfig, tier: TierConfig) -> dict | None:
        """One tier's run: its window now, slice after slice, the queued nearer tiers run in between."""
        with self._turns:
            self._running.setdefault(vendor.name, []).insert(0, tier.name)
        try:
            return self._run_slices(vendor, tier)
        finally:
            with self._turns:
                running = self._running.get(vendor.name)
                if running and tier.name in running:
                    running.remove(tier.name)

    def _run_slices(self, vendor: VendorConfig, tier: TierConfig) -> dict | None:
        document: dict | None = None
        for position, window in enumerate(Window.for_tier(tier, now=utcnow()).slices(tier.slice_h)):
            if position:
                # Each nearer tier queued meanwhile runs once, then the sweep goes on (a near tier due
                # again by then waits for the next slice: the sweep is never starved either).
                handed: set[str] = set()
                while (nearer := self._next_queued(vendor, before=tier)) is not None:
                    if nearer.name in handed:
                        with self._turns:
                            self._queued.setdefault(vendor.name, {})[nearer.name] = nearer
                        break
                    handed.add(nearer.name)
                    self._run_tier(vendor, nearer)
            document = self._run_window(vendor.name, window)
            if document is None:
                break      # lost the run lease or the vendor: the next tick tries again
            if document.get("catch_up_at"):
                # The vendor is out: the rest of the sweep would fail fast batch after batch; the catch-up
                # runs the whole tier again once the breaker may let a probe through.
                self._schedule_catch_up(vendor.name, tier.name, document)
                break
        return document

    def _run_window(self, vendor: str, window: Window) -> dict | None:
        if not self.shares.owns(vendor):
            return None
        lock = LeaseLock(self.es, prefix=self.settings.index_prefix, name=f"harvest-{vendor}",
                         ttl_s=self.settings.harvest_run_lock_ttl_s,
                         # unique per run: two runs of one process must exclude each other too
                         holder=f"{self.election.holder}:{window.tier}:{uuid.uuid4().hex[:6]}")
        with lock.holding() as got:
            if not got:
                log.info("harvest of %s skipped: already running elsewhere", vendor)
                return None
            if not self.shares.owns(vendor):   # lost the vendor while taking its run lease
                return None
            # We hold the vendor's lease: a run still "running" is one that died without recording its end.
            mark_interrupted_runs(self.es, prefix=self.settings.index_prefix, vendor=vendor)
            document = self.harvester.run(vendor, mode=window.mode, start=window.start, end=window.end)
            document["tier"] = window.tier
            self.runs.append(document)
        return document

    def _schedule_catch_up(self, vendor: str, tier: str, document: dict) -> None:
        """A run whose budget ran out during an outage names a catch-up time: run the tier then (one job
        per vendor and tier, replaced by a newer request), not at the tier's next regular run."""
        when = document.get("catch_up_at")
        if not when or self.scheduler is None:
            return
        run_date = datetime.fromisoformat(str(when).replace("Z", "+00:00"))
        self.scheduler.add_job(self.harvest, "date", run_date=run_date, args=[vendor, tier],
                               id=f"harvest-catchup-{tier}-{vendor}", name=f"catch-up {tier} {vendor}",
                               replace_existing=True)
        log.info("harvest of %s (%s): catch-up run scheduled at %s", vendor, tier, iso(run_date))

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
