"""Leases kept in Elasticsearch: one scheduler process is the leader, one harvest runs per vendor.

A lease is a document of the ``locks`` alias whose id is the lock name and which says who holds it until
when. Taking it is a ``create`` (fails if the document exists); taking over an expired lease and
renewing one are compare-and-set writes (``if_seq_no`` / ``if_primary_term``), so two processes can
never both believe they took or renewed the same lease: the second write fails with a conflict.

Expiry is compared with the local clock: processes on different machines need synchronised clocks
(NTP), and the lease time should be well above their drift. A holder that cannot renew (Elasticsearch
unreachable) considers itself the holder only until its own expiry, then steps down.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from elastic_transport import TransportError
from elasticsearch import ApiError, ConflictError, Elasticsearch, NotFoundError

from mappings.locks import LockDoc
from mappings.registry import alias_name
from sas_core.clock import utcnow

log = logging.getLogger(__name__)


def default_holder() -> str:
    """``host:pid:random``: unique per process (and per lock object)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class LeaseLost(RuntimeError):
    """The lease was taken by someone else (or expired) while we believed we held it."""


class LeaseLock:
    """One named lease. Not re-entrant; thread-safe."""

    def __init__(self, es: Elasticsearch, *, prefix: str, name: str, ttl_s: float = 30.0,
                 holder: str | None = None, clock: Callable[[], datetime] = utcnow) -> None:
        self.es = es
        self.index = alias_name(prefix, "locks")
        self.name = name
        self.ttl = timedelta(seconds=ttl_s)
        self.holder = holder or default_holder()
        self.clock = clock
        self._seq: tuple[int, int] | None = None      # (seq_no, primary_term) of our last write
        self._expires_at: datetime | None = None
        self._mutex = threading.Lock()

    # -- state -------------------------------------------------------------------------------------

    @property
    def held(self) -> bool:
        """Whether we hold the lease now (as far as we know: until our own expiry)."""
        with self._mutex:
            return self._seq is not None and self._expires_at is not None and self.clock() < self._expires_at

    def _doc(self, now: datetime, acquired_at: datetime | None = None) -> dict:
        return LockDoc(id=self.name, holder=self.holder, acquired_at=acquired_at or now,
                       expires_at=now + self.ttl).model_dump(mode="json")

    def _remember(self, response, now: datetime) -> None:
        self._seq = (response["_seq_no"], response["_primary_term"])
        self._expires_at = now + self.ttl

    def _forget(self) -> None:
        self._seq = None
        self._expires_at = None

    # -- operations ----------------------------------------------------------------------------------

    def acquire(self) -> bool:
        """Take the lease if it is free, expired, or already ours (then renew it). Never blocks."""
        with self._mutex:
            now = self.clock()
            try:
                response = self.es.create(index=self.index, id=self.name, document=self._doc(now), refresh=False)
                self._remember(response, now)
                log.info("lease %s taken by %s", self.name, self.holder)
                return True
            except ConflictError:
                pass
            except (ApiError, TransportError) as exc:
                log.warning("lease %s: cannot reach Elasticsearch (%s)", self.name, exc)
                return self._still_ours(now)
            return self._take_over_or_renew(now)

    def _still_ours(self, now: datetime) -> bool:
        if self._expires_at is not None and now < self._expires_at:
            return True
        self._forget()
        return False

    def _take_over_or_renew(self, now: datetime) -> bool:
        try:
            current = self.es.get(index=self.index, id=self.name)
        except NotFoundError:
            return False  # released between our create and get: next attempt will create it
        except (ApiError, TransportError) as exc:
            log.warning("lease %s: cannot read it (%s)", self.name, exc)
            return self._still_ours(now)
        source = current["_source"]
        expires_at = datetime.fromisoformat(source["expires_at"])
        mine = source.get("holder") == self.holder
        if not mine and now < expires_at:
            self._forget()
            return False
        acquired_at = datetime.fromisoformat(source["acquired_at"]) if mine else now
        try:
            response = self.es.index(
                index=self.index, id=self.name, document=self._doc(now, acquired_at),
                if_seq_no=current["_seq_no"], if_primary_term=current["_primary_term"], refresh=False,
            )
        except ConflictError:
            self._forget()
            return False
        except (ApiError, TransportError) as exc:
            log.warning("lease %s: cannot write it (%s)", self.name, exc)
            return self._still_ours(now)
        if not mine:
            log.info("lease %s taken over by %s (previous holder %s expired)", self.name, self.holder,
                     source.get("holder"))
        self._remember(response, now)
        return True

    def renew(self) -> bool:
        """Extend our lease (compare-and-set on our last write). ``False`` when it is no longer ours."""
        with self._mutex:
            now = self.clock()
            if self._seq is None:
                return False
            seq_no, term = self._seq
            try:
                response = self.es.index(
                    index=self.index, id=self.name, document=self._doc(now),
                    if_seq_no=seq_no, if_primary_term=term, refresh=False,
                )
            except (ConflictError, NotFoundError):
                log.warning("lease %s lost by %s", self.name, self.holder)
                self._forget()
                return False
            except (ApiError, TransportError) as exc:
                log.warning("lease %s: renewal failed (%s)", self.name, exc)
                return self._still_ours(now)
            self._remember(response, now)
            return True

    def release(self) -> None:
        """Give the lease back (only if still ours); errors are logged, the lease then just expires."""
        with self._mutex:
            if self._seq is None:
                return
            seq_no, term = self._seq
            self._forget()
            try:
                self.es.delete(index=self.index, id=self.name, if_seq_no=seq_no, if_primary_term=term,
                               refresh=False)
                log.info("lease %s released by %s", self.name, self.holder)
            except (ConflictError, NotFoundError):
                pass
            except (ApiError, TransportError) as exc:
                log.warning("lease %s: release failed (%s); it will expire", self.name, exc)

    @contextmanager
    def holding(self, *, renew_every_s: float | None = None) -> Iterator[bool]:
        """``with lock.holding() as got:`` — take the lease (``got`` says whether), keep renewing it
        from a background thread while the block runs, release it after."""
        if not self.acquire():
            yield False
            return
        stop = threading.Event()
        interval = renew_every_s or max(self.ttl.total_seconds() / 3, 0.2)

        def keep() -> None:
            while not stop.wait(interval):
                if not self.renew():
                    return

        keeper = threading.Thread(target=keep, name=f"lease-{self.name}", daemon=True)
        keeper.start()
        try:
            yield True
        finally:
            stop.set()
            keeper.join(timeout=5)
            self.release()


class LeaderElection:
    """The scheduler's leadership: whoever holds the ``scheduler-leader`` lease runs the jobs.

    ``tick()`` is called periodically (every third of the lease time): it takes the lease when free or
    expired and renews it when held. Jobs ask ``is_leader`` right before running.
    """

    LOCK_NAME = "scheduler-leader"

    def __init__(self, es: Elasticsearch, *, prefix: str, ttl_s: float = 30.0, holder: str | None = None) -> None:
        self.lease = LeaseLock(es, prefix=prefix, name=self.LOCK_NAME, ttl_s=ttl_s, holder=holder)

    @property
    def holder(self) -> str:
        return self.lease.holder

    @property
    def is_leader(self) -> bool:
        return self.lease.held

    def tick(self) -> bool:
        """Take or renew the lease; whether we lead now."""
        if self.lease.held:
            return self.lease.renew() or self.lease.acquire()
        return self.lease.acquire()

    def resign(self) -> None:
        self.lease.release()
