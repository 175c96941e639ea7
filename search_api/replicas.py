"""The API replicas alive, counted in Elasticsearch: what the per-replica rate limits divide by.

Each API process writes a membership document ``api-replica-<holder>`` into the ``locks`` index
(the lease document of ``mappings.locks``) every third of ``api_replica_ttl_s`` from a thread of its
own, and counts the unexpired ones. A replica killed with ``kill -9`` stops counting once its document
expires; one stopped cleanly deletes it at once. While Elasticsearch does not answer, the last count is
kept (the limits neither double nor vanish during an outage).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from mappings.locks import LockDoc
from sas_core.clock import iso, utcnow
from sas_core.errors import SasError
from search_api.executor import Executor

log = logging.getLogger(__name__)

PREFIX = "api-replica-"


class ReplicaRegistry:
    """``count()``: API replicas alive as last seen (1 at least: this one), no I/O."""

    def __init__(self, *, executor: Executor, ttl_s: float, holder: str | None = None,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.executor = executor
        self.ttl = timedelta(seconds=ttl_s)
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.clock = clock
        self._count = 1
        self._started_at = clock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def doc_id(self) -> str:
        return f"{PREFIX}{self.holder}"

    def count(self) -> int:
        return self._count

    def beat(self) -> int:
        """Write our membership, then count the live ones (ours included even if not visible yet)."""
        now = self.clock()
        doc = LockDoc(id=self.doc_id, holder=self.holder, acquired_at=self._started_at,
                      expires_at=now + self.ttl).model_dump(mode="json")
        try:
            # Visible to the next beat of every replica (a tiny index: the refresh costs nothing).
            self.executor.index_documents(index="locks", documents=[doc], refresh="true")
            found = self.executor.search(index="locks", body={
                "size": 1000, "_source": ["holder"],
                "query": {"bool": {"filter": [{"prefix": {"id": PREFIX}},
                                              {"range": {"expires_at": {"gt": iso(now)}}}]}}})
        except (SasError, OSError, RuntimeError) as exc:   # counting must never stop the app
            log.warning("API replicas: cannot count them (%s); keeping %d", exc, self._count)
            return self._count
        others = {hit["_source"]["holder"] for hit in found["hits"]["hits"]} - {self.holder}
        if len(others) + 1 != self._count:
            log.info("API replicas alive: %d (was %d)", len(others) + 1, self._count)
        self._count = len(others) + 1
        return self._count

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self.beat()
        interval = max(self.ttl.total_seconds() / 3, 0.2)

        def loop() -> None:
            while not self._stop.wait(interval):
                self.beat()

        self._thread = threading.Thread(target=loop, name="api-replicas", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop beating and leave at once (the other replicas raise their share at their next beat)."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout=5)
        self._thread = None
        try:
            self.executor.delete_if_exists(index="locks", doc_id=self.doc_id, refresh="false")
        except SasError as exc:
            log.warning("API replicas: cannot leave (%s); the membership will expire", exc)
