"""Vendor harvests in worker processes: the same runs as ``Harvester.run``, on more than one core.

Why: a harvest is CPU-bound Python once the vendor has answered (decoding bundles, mapping slots,
building bulk bodies). In one process the GIL holds every vendor's run to one core, however many run
at once, while Elasticsearch waits for the next bulk request (measured with ``py-spy --gil`` during
``sas bench harvest``: the harvester held the GIL ~80 % of the sweep and the machine stayed ~25 %
idle).

Each vendor is pinned to one worker process (its position in the vendor list, modulo the number of
processes), so its circuit breaker — which lives in the worker's ``Harvester`` — sees every run of that
vendor, and a vendor is never harvested by two workers at once. A worker runs one vendor at a time;
``processes`` is therefore also the number of vendors harvested at once. Run documents are written
by the worker (as ``Harvester.run`` does); the per-vendor Prometheus figures are recorded again in the
calling process, whose ``/metrics`` is the one scraped.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import threading
from concurrent.futures import BrokenExecutor, ProcessPoolExecutor
from datetime import datetime

from connectors.vendors.client import CIRCUIT_CODES
from connectors.vendors.config import VendorConfig, find_vendor, load_vendors
from indexer.harvest.window import Mode
from sas_core.errors import ConfigurationError
from sas_core.metrics import CIRCUIT_STATE
from sas_core.settings import ElasticsearchSettings, HarvestSettings

log = logging.getLogger(__name__)

#: The worker process's harvester (set by ``_start_worker``).
_HARVESTER = None


#: How often a worker checks that the process that started it is still alive.
_PARENT_CHECK_S = 1.0


def _exit_with_parent(parent: int) -> None:
    """End this worker as soon as its parent is gone (a scheduler killed with ``kill -9`` takes its workers
    with it). Otherwise the orphan would go on harvesting its vendor after the dead scheduler's lease has
    expired and another host has taken the vendor: two harvests of one vendor at once. (Not
    ``PR_SET_PDEATHSIG``: it fires when the *thread* that started the worker ends, and pools start workers
    from whichever scheduler thread first needed them.)"""
    import os
    import time

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(_PARENT_CHECK_S)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _start_worker(settings: HarvestSettings, connection: ElasticsearchSettings, vendors: list[VendorConfig],
                  request_timeout_s: float, log_level: int | None) -> None:
    global _HARVESTER
    import os

    _exit_with_parent(os.getppid())
    from indexer.harvest import Harvester
    from sas_core.es import make_client
    from sas_core.logging import configure_logging

    if log_level is not None:  # the parent logs: so do its workers, the same way
        configure_logging(level=logging.getLevelName(log_level), json_format=settings.log_json)
    _HARVESTER = Harvester(es=make_client(connection, request_timeout=request_timeout_s), settings=settings,
                           vendors=vendors)
    # The geocoder of vendor-only places (the communes gazetteer: 0.36 s of CPU) is built now, with the
    # worker, not inside the first run that meets such a place: that run would otherwise carry it.
    _ = _HARVESTER.geocoder


def _run_in_worker(vendor: str, mode: Mode, start: datetime | None, end: datetime | None,
                   now: datetime | None) -> tuple[dict, str]:
    assert _HARVESTER is not None, "worker not initialised"
    document = _HARVESTER.run(vendor, mode=mode, start=start, end=end, now=now)
    state = asyncio.run(_HARVESTER.breakers.state(_HARVESTER.vendor(vendor)))
    return document, state


class HarvestWorkers:
    """``processes`` harvester processes behind the interface of ``Harvester`` (``vendors``, ``vendor``,
    ``run``). Thread-safe: ``run`` may be called from several threads (scheduler jobs) at once."""

    def __init__(self, *, settings: HarvestSettings, processes: int, vendors: list[VendorConfig] | None = None,
                 connection: ElasticsearchSettings | None = None, request_timeout_s: float = 120.0) -> None:
        if processes < 1:
            raise ConfigurationError("harvest worker processes must be at least 1")
        # Each worker builds its own client: it needs the connection settings besides its harvest slice
        # (the whole Settings carries both).
        if connection is None:
            if not isinstance(settings, ElasticsearchSettings):
                raise ConfigurationError("harvest workers need the Elasticsearch connection settings")
            connection = settings
        self.settings = settings
        self.vendors = vendors if vendors is not None else load_vendors(settings.vendors_file)
        self.processes = processes
        root = logging.getLogger()
        self._args = (settings, connection, self.vendors, request_timeout_s, root.level if root.handlers else None)
        self._slots = {vendor.name: i % processes for i, vendor in enumerate(self.vendors)}
        self._lock = threading.Lock()
        self._pools: list[ProcessPoolExecutor | None] = [None] * processes

    def vendor(self, name: str) -> VendorConfig:
        return find_vendor(self.vendors, name)

    def _pool(self, slot: int) -> ProcessPoolExecutor:
        with self._lock:
            pool = self._pools[slot]
            if pool is None:
                # spawn: a clean interpreter (no inherited threads, locks or Elasticsearch connections).
                pool = self._pools[slot] = ProcessPoolExecutor(
                    max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                    initializer=_start_worker, initargs=self._args)
            return pool

    def start(self) -> HarvestWorkers:
        """Start every worker now (otherwise each starts at its first run); returns ``self``."""
        for slot in range(self.processes):
            self._pool(slot).submit(int).result()
        return self

    def pids(self) -> list[int]:
        """Process ids of the running workers (CPU accounting of the benchmark)."""
        with self._lock:
            return [pid for pool in self._pools if pool is not None for pid in (pool._processes or {})]

    def run(self, vendor: VendorConfig | str, *, mode: Mode = "incremental", start: datetime | None = None,
            end: datetime | None = None, now: datetime | None = None) -> dict:
        """Harvest ``vendor`` in its worker and return the ``harvest_runs`` document (as ``Harvester.run``)."""
        from indexer.harvest.report import observe_run

        name = vendor.name if isinstance(vendor, VendorConfig) else self.vendor(vendor).name
        slot = self._slots[name]
        try:
            document, state = self._pool(slot).submit(_run_in_worker, name, mode, start, end, now).result()
        except BrokenExecutor as exc:
            # The worker died (killed, out of memory): start a new one next time; this run failed.
            log.error("harvest worker of %s died: %s", name, exc)
            with self._lock:
                self._pools[slot] = None
            document = {"vendor": name, "mode": mode, "status": "failed", "upserted": 0, "deleted": 0,
                        "unchanged": 0, "rejected": 0, "stale_marked": 0, "duration_s": 0.0,
                        "errors": [f"harvest worker process died: {exc}"]}
            observe_run(name, "failed", document)
            return document
        observe_run(name, document["status"], document)
        CIRCUIT_STATE.labels(name).set(CIRCUIT_CODES.get(state, 0))
        return document

    def close(self) -> None:
        """Stop the workers (after their current run)."""
        with self._lock:
            pools, self._pools = self._pools, [None] * self.processes
        for pool in pools:
            if pool is not None:
                pool.shutdown(wait=True)

    def __enter__(self) -> HarvestWorkers:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
