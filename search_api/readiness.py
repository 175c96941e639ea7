"""Readiness of the API for ``/readyz``, answered without queueing behind searches.

The search routes are synchronous and share the request thread pool and the pooled Elasticsearch
connections (which block when all are taken): a probe run there waited seconds under load, past the
orchestrator's check timeout, and a saturated but healthy API was declared dead. The probe therefore
runs in a thread of its own with its own small client, and ``/readyz`` serves its last result.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from sas_core.errors import SasError
from search_api.executor import Executor


class ReadinessProbe:
    """Last readiness state of ``executor``, refreshed at most every ``cache_s`` in a dedicated thread."""

    def __init__(self, *, executor: Executor, cache_s: float, stale_s: float, wait_s: float) -> None:
        self.executor = executor
        self.cache_s = cache_s
        self.stale_s = max(stale_s, cache_s)
        self.wait_s = wait_s
        # One worker: probes never pile up, whatever the number of /readyz calls.
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="readyz")
        self._lock = threading.Lock()
        self._pending: Future | None = None
        self._state: dict[str, Any] | None = None
        self._at = float("-inf")

    def _probe(self) -> dict[str, Any]:
        try:
            state = {"ok": True, **self.executor.readiness()}
        except SasError as exc:
            state = {"ok": False, "reason": exc.message}
        self._state, self._at = state, time.monotonic()
        return state

    def _refresh(self) -> Future:
        with self._lock:
            if self._pending is None or self._pending.done():
                self._pending = self._pool.submit(self._probe)
            return self._pending

    async def state(self) -> dict[str, Any]:
        """``{"ok": True, cluster_status, missing_aliases}`` or ``{"ok": False, reason}``."""
        age = time.monotonic() - self._at
        if self._state is not None and age < self.cache_s:
            return self._state
        pending = self._refresh()
        if self._state is not None and age < self.stale_s:
            return self._state  # stale-while-revalidate: the refresh runs in the background
        try:
            return await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(pending)), self.wait_s)
        except TimeoutError:
            return {"ok": False, "reason": f"Elasticsearch did not answer the readiness probe within {self.wait_s} s"}

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
