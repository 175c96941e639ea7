"""The harvester: one run of one vendor over one window, from the roster to the run's report (the
stages are described in ``indexer.harvest``)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

from elastic_transport import TransportError
from elasticsearch import ApiError, Elasticsearch, helpers

from connectors.vendors.client import (
    BreakerBoard,
    CircuitOpen,
    SearchAnswer,
    VendorClient,
    VendorError,
    VendorUnavailable,
)
from connectors.vendors.config import VendorConfig, find_vendor, load_vendors
from connectors.vendors.mapping import BundleError, BundleMapper, specialty_lookup
from connectors.vendors.queries import Search, batches
from indexer.bulk import BulkWriter
from indexer.harvest.batch_writes import BatchAnswer, SteadyBook, hold_deletions, write_batch
from indexer.harvest.existing_slots import ExistingSlots, vendor_slots
from indexer.harvest.gc_tuning import tune_gc
from indexer.harvest.indexed_book import IndexedBook
from indexer.harvest.offer_book import OfferBook, load_offer_book
from indexer.harvest.report import observe_run, run_document
from indexer.harvest.run_stats import RunStats
from indexer.harvest.vendor_places import PlaceMaker, build_geocoder
from indexer.harvest.window import Mode, Window
from indexer.run_records import MAX_ERRORS, record_run, record_running
from mappings.registry import alias_name
from sas_core.clock import iso, utcnow
from sas_core.errors import ConfigurationError
from sas_core.metrics import ES_ERRORS
from sas_core.settings import HarvestSettings

log = logging.getLogger(__name__)


class Harvester:
    """Harvests vendors into Elasticsearch. Long-lived (one per process): it keeps the vendors' circuit
    breakers and the geocoder between runs."""

    def __init__(self, *, es: Elasticsearch, settings: HarvestSettings, vendors: list[VendorConfig] | None = None,
                 breakers: BreakerBoard | None = None, geocoder: Any | None = None,
                 specialty_codes: dict[str, str] | None = None) -> None:
        self.es = es
        self.settings = settings
        self.prefix = settings.index_prefix
        self.vendors = vendors if vendors is not None else load_vendors(settings.vendors_file)
        self.breakers = breakers or BreakerBoard()
        self._geocoder = geocoder
        self._geocoder_ready = geocoder is not None
        self._geocoder_lock = threading.Lock()
        if specialty_codes is None:
            from connectors.directory.nomenclatures import load_specialties

            specialty_codes = specialty_lookup(load_specialties(settings.reference_data_dir).labels)
        self.specialty_codes = specialty_codes
        self.slots_alias = alias_name(self.prefix, "slots")
        #: Per vendor, the batches whose last incremental answer changed nothing: the same answer again
        #: is neither decoded nor mapped (the steady state of frequent polling). Kept in memory only: a
        #: new process decodes everything once.
        self._steady: dict[str, SteadyBook] = {}
        #: Per vendor, what this process indexed (``indexer.harvest.indexed_book``): incremental runs read
        #: only what entered their window since.
        self.indexed = IndexedBook(es=es, slots_alias=self.slots_alias,
                                   runs_alias=alias_name(self.prefix, "harvest_runs"),
                                   enabled=settings.harvest_indexed_copy,
                                   max_age_s=settings.harvest_indexed_copy_max_age_s)
        tune_gc()

    # -- configuration -------------------------------------------------------------------------------

    def vendor(self, name: str) -> VendorConfig:
        return find_vendor(self.vendors, name)

    @property
    def geocoder(self):
        with self._geocoder_lock:
            if not self._geocoder_ready:
                self._geocoder = build_geocoder(self.settings)
                self._geocoder_ready = True
            return self._geocoder

    # -- one run -------------------------------------------------------------------------------------

    def run(self, vendor: VendorConfig | str, *, mode: Mode = "incremental", start: datetime | None = None,
            end: datetime | None = None, now: datetime | None = None) -> dict:
        """Harvest ``vendor`` over the window of ``mode`` (or [start, end] when given) and return the
        ``harvest_runs`` document written. Never raises for a vendor failure (it is in the document)."""
        if isinstance(vendor, str):
            vendor = self.vendor(vendor)
        now = now or utcnow()
        window = Window.for_mode(vendor, mode, now=now)
        if start is not None or end is not None:
            window = Window(mode, start or window.start, end or window.end)
        run_id = f"harvest-{vendor.name}-{now.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
        record_running(self.es, prefix=self.prefix, run_id=run_id, vendor=vendor.name, mode=window.mode,
                       started_at=now)
        started = time.perf_counter()
        stats = RunStats()
        status = "failed"
        try:
            status = self._run(vendor, window, now, stats, run_id)
        except (ApiError, TransportError) as exc:
            stats.error("elasticsearch", f"Elasticsearch failed during the run: {exc}")
            ES_ERRORS.labels(type(exc).__name__).inc()
            log.exception("harvest of %s: Elasticsearch failure", vendor.name)
        except Exception as exc:  # noqa: BLE001 - a bug must not kill the scheduler; it is reported
            stats.error("internal", f"{type(exc).__name__}: {exc}")
            log.exception("harvest of %s failed", vendor.name)
        ended = utcnow()
        # A full sweep whose budget ran out during an outage asks for a catch-up once the breaker may
        # let a probe through again, instead of leaving days 3-7 stale until the next hourly sweep
        # (incremental runs come every few minutes anyway). The scheduler acts on it.
        catch_up_at = (ended + timedelta(seconds=vendor.breaker_reset_s)
                       if stats.retry_pending and window.mode == "full" else None)
        document = run_document(run_id, vendor, window, now, ended, time.perf_counter() - started, status, stats,
                                catch_up_at=catch_up_at)
        record_run(self.es, prefix=self.prefix, document=document)
        log.info("harvest %s %s: %s, %d read, %d created, %d updated, %d unchanged, %d deleted, %d stale, "
                 "%d indexed read, %.1fs", vendor.name, window.mode, status, stats.read, stats.created, stats.updated,
                 stats.unchanged, stats.deleted, stats.stale_marked, stats.indexed_read, document["duration_s"])
        observe_run(vendor.name, status, document)
        return document

    def _run(self, vendor: VendorConfig, window: Window, now: datetime, stats: RunStats, run_id: str) -> str:
        practitioner_ids, sos_ids, book = load_offer_book(self.es, prefix=self.prefix, vendor=vendor)
        tasks = _search_tasks(vendor, practitioner_ids, sos_ids)
        if not tasks:
            stats.error("empty_roster", f"{vendor.name}: nobody to ask for (no roster, no offer names this vendor)")
            return "failed"
        # No refresh here: the vendor's previous run refreshed the index when it ended (``finally``
        # below), and nothing else writes the fields the scan reads. A refresh per run start, with
        # several vendors writing, only cut their in-flight documents into small segments to merge.
        existing, copy, stats.indexed_read = self.indexed.existing(vendor=vendor, window=window, now=now,
                                                                   run_id=run_id)
        writer = BulkWriter(self.es, index=self.slots_alias, chunk=self.settings.harvest_bulk_chunk,
                            threads=self.settings.harvest_bulk_threads)
        places = PlaceMaker(vendor=vendor.name, geocoder=self.geocoder)
        harvested_at = iso(now)
        if window.mode == "full":
            book.load()   # a sweep maps every answer: read the offers before the vendor's answers come in
        try:
            asyncio.run(self._fetch_and_write(vendor, window, tasks, book, places, existing, writer, stats,
                                              harvested_at))
            self._write_deletions(vendor, existing, writer, stats, harvested_at)
            self._delete_expired(vendor, now, existing, writer, stats)
        finally:
            writer.close()
            # The slots index refreshes rarely on its own (30 s: indexing throughput); what a run wrote
            # or deleted is made visible to search at once instead (freshness).
            if writer.written:
                self.es.indices.refresh(index=self.slots_alias)
        # Only now, every write in: a run that raised above, or whose writes Elasticsearch refused,
        # leaves no copy of what is indexed behind (the vendor's next run reads its window again).
        if not writer.errors:
            self.indexed.keep(vendor=vendor, window=window, existing=existing, copy=copy, started=now)
        stats.places_created = len(places.pending)
        _count_writes(writer, stats)
        if stats.batches_failed == stats.batches:
            return "failed"
        if stats.batches_failed or writer.errors or stats.deletions_held:
            return "partial"
        return "success"

    async def _fetch_and_write(self, vendor: VendorConfig, window: Window, tasks: list[tuple[Search, list[str]]],
                               book: OfferBook, places: PlaceMaker, existing: ExistingSlots, writer: BulkWriter,
                               stats: RunStats, harvested_at: str) -> None:
        mapper = BundleMapper(vendor=vendor.name, specialty_codes=self.specialty_codes)
        # The budget bounds the time the run spends waiting for an unavailable vendor (for its breaker
        # to half-open, or a backoff before a last round), not the sweep's own work: a national sweep
        # of one vendor takes longer than any budget, and an outage in its middle must still be waited
        # out and its remaining batches resumed. Full sweeps only: an incremental run's retry is the
        # next incremental run, minutes later, and it must not hold the vendor's lease.
        budget = _WaitBudget(vendor.run_budget_s if window.mode == "full" else 0.0)
        quiet_retries = 0   # retry rounds while the breaker stayed closed (scattered failures)
        stats.batches = len(tasks)
        async with VendorClient(vendor, breakers=self.breakers,
                                known_pages=self._known_pages(vendor, window.mode)) as client:
            async def one(search: Search, batch: list[str]):
                try:
                    found = await client.search(search, ids=batch, start=window.start, end=window.end)
                    return search, batch, found, None
                except VendorError as exc:
                    return search, batch, None, exc

            todo = tasks
            failed: list[tuple[list[str], VendorError]] = []
            while True:
                retry = await self._one_round(vendor, window, todo, one, mapper, book, places, existing, writer,
                                              stats, harvested_at, failed)
                if not retry:
                    break
                wait = await self._retry_wait(vendor, quiet_retries, budget, stats)
                if wait is None:
                    break
                quiet_retries += wait[1]
                budget.spend(wait[0])
                await asyncio.sleep(wait[0])
                stats.batches_retried += len(retry)
                retried = {id(batch) for _, batch in retry}
                failed = [(batch, error) for batch, error in failed if id(batch) not in retried]
                todo = retry
            # Stale only what stayed failed at the end of the run (a batch harvested on retry is fresh).
            for batch, error in failed:
                self._batch_failed(batch, error, existing, writer, stats, harvested_at)
            stats.requests += client.requests
        if places.pending:
            self._write_places(places, stats)

    async def _one_round(self, vendor: VendorConfig, window: Window, todo: list[tuple[Search, list[str]]], one,
                         mapper: BundleMapper, book: OfferBook, places: PlaceMaker, existing: ExistingSlots,
                         writer: BulkWriter, stats: RunStats, harvested_at: str,
                         failed: list[tuple[list[str], VendorError]]) -> list[tuple[Search, list[str]]]:
        """Send ``todo``'s searches at once and write each answer as it comes; the failed batches go to
        ``failed``, and those worth another try in this run are returned."""
        retry: list[tuple[Search, list[str]]] = []
        # A search is several requests (one per ≤ 72 h window, then its pages) and the client bounds
        # requests, not searches: with every batch started at once, each search's second request queued
        # behind the first request of every other batch, nothing was written before the vendor's whole
        # roster had answered once, and the partial answers of all batches sat in memory (2.8 GB per
        # worker, zero slots written after 10 minutes, on a national vendor of 95,000 offers). Searches
        # in flight are bounded too, so answers are written as the sweep goes.
        in_flight = asyncio.Semaphore(2 * vendor.concurrency)
        # Answers are handed over through a queue, not kept by their tasks: a finished task holds its result
        # (every page, decoded) as long as the task is referenced, and a list of the tasks (or
        # ``asyncio.as_completed``, whose frame keeps its argument) kept every answer of the vendor's roster
        # alive until the round ended — 4.3 GB per worker and growing on a national vendor. Once written, an
        # answer is garbage.
        answers: asyncio.Queue = asyncio.Queue()

        async def bounded(search: Search, batch: list[str]) -> None:
            try:
                async with in_flight:
                    outcome = await one(search, batch)
            except Exception as exc:  # noqa: BLE001 - re-raised by the loop below, as as_completed did
                outcome = exc
            answers.put_nowait(outcome)

        running = {asyncio.create_task(bounded(search, batch)) for search, batch in todo}
        for _ in range(len(running)):
            outcome = await answers.get()
            if isinstance(outcome, Exception):
                raise outcome
            search, batch, answer, error = outcome
            if answer is not None:
                if not book.loaded and not (answer.unread and all(answer.unread)):
                    # An answer to map (not the batch's last, unchanged one): the vendor's offers are read
                    # now, in a thread — a national vendor's take seconds, and the event loop must go on
                    # serving the other batches' requests meanwhile (their timeouts run on its clock).
                    await asyncio.to_thread(book.load)
                error = self._write_answer(vendor, search, batch, answer.pages, mapper, book, places,
                                           existing, writer, stats, harvested_at, window.mode, answer=answer)
                if error is None:
                    continue
            # Unavailable vendor (breaker open, 5xx, timeouts): worth another try in this run.
            # Refused or malformed answers would come back the same: final at once.
            if isinstance(error, (CircuitOpen, VendorUnavailable)):
                retry.append((search, batch))
            failed.append((batch, error))
        return retry

    async def _retry_wait(self, vendor: VendorConfig, quiet_retries: int, budget: _WaitBudget,
                          stats: RunStats) -> tuple[float, int] | None:
        """(seconds to wait, quiet round or not) before retrying the unavailable batches; ``None``: no retry.

        Wait for the breaker to let a probe through, as often as the waiting budget allows. When it did
        not open (scattered failures, each already retried max_attempts times), one more round after a
        backoff, not a loop against a sick vendor."""
        wait = await self.breakers.half_open_in(vendor)
        quiet = 0
        if not wait:
            if quiet_retries:
                return None
            quiet = 1
            wait = vendor.backoff_max_s
        wait += 0.05   # purgatory half-opens strictly after opened_at + ttl
        if not budget.allows(wait):
            stats.retry_pending = True
            return None
        return wait, quiet

    def _write_answer(self, vendor: VendorConfig, search: str, batch: list[str], pages: list[dict],
                      mapper: BundleMapper, book: OfferBook, places: PlaceMaker, existing: ExistingSlots,
                      writer: BulkWriter, stats: RunStats, harvested_at: str, mode: Mode,
                      answer: SearchAnswer | None = None) -> VendorError | None:
        """``_write_batch``; what made the batch fail when its answer could not be mapped."""
        try:
            self._write_batch(vendor, search, batch, pages, mapper, book, places, existing, writer, stats,
                              harvested_at, mode, answer=answer)
        except BundleError as exc:
            return VendorError("malformed_bundle", f"{vendor.name}: {exc}")
        except Exception as exc:  # noqa: BLE001 - one batch's bug must not stop the others
            log.exception("harvest of %s: batch failed while mapping", vendor.name)
            return VendorError("mapping_failed", f"{vendor.name}: {type(exc).__name__}: {exc}")
        return None

    def _write_batch(self, vendor: VendorConfig, search: str, batch: list[str], pages: list[dict],
                     mapper: BundleMapper, book: OfferBook, places: PlaceMaker, existing: ExistingSlots,
                     writer: BulkWriter, stats: RunStats, harvested_at: str, mode: Mode = "incremental",
                     answer: SearchAnswer | None = None) -> None:
        batch_answer = BatchAnswer(vendor=vendor.name, search=search, batch=batch, pages=pages)
        if answer is not None:
            batch_answer = BatchAnswer(vendor=vendor.name, search=search, batch=batch, pages=pages,
                                       digests=answer.digests, bodies=answer.bodies, unread=answer.unread)
        write_batch(batch_answer, mapper=mapper, book=book, places=places, existing=existing, writer=writer,
                    stats=stats, harvested_at=harvested_at, mode=mode, settings=self.settings,
                    steady=self._steady.setdefault(vendor.name, {}))

    def _known_pages(self, vendor: VendorConfig, mode: Mode) -> set[bytes] | None:
        """Entry digests of the vendor's steady batches' pages (incremental runs only: a full sweep also
        compares every document with the directory, which needs them decoded and mapped)."""
        if mode != "incremental":
            return None
        return {digest for steady in self._steady.get(vendor.name, {}).values()
                for digest in steady.digests if digest is not None}

    def _write_deletions(self, vendor: VendorConfig, existing: ExistingSlots, writer: BulkWriter, stats: RunStats,
                         now_iso: str) -> None:
        """The run's deletions, unless together they wipe much more than usual of what the vendor had
        indexed in the window (many small batches each under the per-batch minimum)."""
        gone, settings = existing.to_delete, self.settings
        share = settings.harvest_mass_delete_share
        if len(gone) >= settings.harvest_mass_delete_min and len(gone) > share * len(existing.by_id):
            log.warning("harvest of %s: %d of %d slots would be deleted; held and marked stale", vendor.name,
                        len(gone), len(existing.by_id))
            hold_deletions(gone, "run_mass_deletion", existing, writer, stats, now_iso)
            return
        for slot_id in gone:
            writer.delete(slot_id)
            existing.deleted(slot_id)
        stats.deleted += len(gone)

    def _batch_failed(self, batch: list[str], error: VendorError, existing: ExistingSlots, writer: BulkWriter,
                      stats: RunStats, now_iso: str) -> None:
        """Keep the batch's slots (never wipe on failure) and mark them stale from now, once."""
        stats.batches_failed += 1
        stats.error(error.reason, error.message)
        for key in batch:
            for slot_id in existing.by_key.get(key, ()):
                if not existing.by_id[slot_id][2]:
                    writer.update(slot_id, {"stale_since": now_iso})
                    existing.staled(slot_id)
                    stats.stale_marked += 1

    def _delete_expired(self, vendor: VendorConfig, now: datetime, existing: ExistingSlots, writer: BulkWriter,
                        stats: RunStats) -> None:
        """Slots of the vendor already over: nobody can book them any more."""
        query = {"bool": {"filter": [*vendor_slots(vendor), {"range": {"end": {"lte": iso(now)}}}]}}
        for hit in helpers.scan(self.es, index=self.slots_alias, size=10_000, preserve_order=False,
                                query={"query": query, "_source": False}):
            writer.delete(hit["_id"])
            existing.deleted(hit["_id"])
            stats.expired_deleted += 1

    def _write_places(self, places: PlaceMaker, stats: RunStats) -> None:
        """Vendor-only places into the offers index (``create``: one an earlier run created stays as it is)."""
        writer = BulkWriter(self.es, index=alias_name(self.prefix, "offers"), chunk=1000, create_conflict="ignore")
        for doc in places.pending:
            writer.create(doc["id"], doc)
        writer.close()
        if writer.errors:
            # One reason for whatever went wrong (a refused document, a failed request), as before the
            # shared writer: the messages say which.
            stats.error("place_write_failed", f"vendor-only place {writer.error_messages[0]}",
                        count=writer.errors.count)
            for message in writer.error_messages[1:]:
                stats.error("place_write_failed", f"vendor-only place {message}", count=0)


class _WaitBudget:
    """Seconds a run may still spend waiting for an unavailable vendor (``VendorConfig.run_budget_s``)."""

    def __init__(self, seconds: float) -> None:
        self.left = seconds

    def allows(self, wait: float) -> bool:
        return wait <= self.left

    def spend(self, wait: float) -> None:
        self.left -= wait


def _search_tasks(vendor: VendorConfig, practitioner_ids: list[str],
                  sos_ids: list[str]) -> list[tuple[Search, list[str]]]:
    """(search, ids) of every request of the run."""
    tasks: list[tuple[Search, list[str]]] = []
    if vendor.practitioner_search:
        tasks += [(vendor.practitioner_search, b) for b in batches(practitioner_ids, vendor.batch_size)]
    if "sos" in vendor.use_cases:
        # SOS Médecins: at most ``sos_batch_size`` SIRETs per request (10, the functional spec).
        tasks += [("sos", b) for b in batches(sos_ids, vendor.sos_batch_size)]
    return tasks


def _count_writes(writer: BulkWriter, stats: RunStats) -> None:
    """The slots writer's figures into the run's: creations, and what Elasticsearch refused."""
    stats.created += sum(count for key, count in writer.results.items() if key.startswith("create:"))
    for reason, count in writer.errors.items():
        stats.errors[reason] += count
        if reason == "bulk_request_failed":
            ES_ERRORS.labels("bulk_request_failed").inc(count)
    room = max(MAX_ERRORS - len(stats.error_messages), 0)
    stats.error_messages.extend(writer.error_messages[:room])


def run_harvest(*, es: Elasticsearch, settings: HarvestSettings, vendor: str | None = None, mode: Mode = "incremental",
                harvester: Harvester | None = None) -> list[dict]:
    """One harvest of ``vendor`` (or of every enabled vendor, one after the other); the run documents."""
    harvester = harvester or Harvester(es=es, settings=settings)
    if not harvester.vendors:
        raise ConfigurationError("no vendor configured: set SAS_VENDORS_FILE to an vendors file")
    targets = [harvester.vendor(vendor)] if vendor else [v for v in harvester.vendors if v.enabled]
    return [harvester.run(target, mode=mode) for target in targets]


def iter_vendor_names(vendors: Iterable[VendorConfig]) -> Iterator[str]:
    for vendor in vendors:
        if vendor.enabled:
            yield vendor.name

