"""How N scheduler processes split the vendors between them (``indexer.scheduler.HarvestJobs``).

Each process keeps two kinds of leases in the ``locks`` index (``indexer.leader.LeaseLock``, renewed
every third of their time by the ``vendor-leases`` job, expired otherwise):

- a **membership** lease ``scheduler-member-<holder>``: the processes alive are the unexpired ones;
- one **ownership** lease ``harvest-owner-<vendor>`` per vendor it harvests: only the owner runs the
  vendor's tiers (each run still takes the per-run lease ``harvest-<vendor>``, which also keeps
  ``sas harvest run`` and a previous owner's run still in flight out).

A process killed with ``kill -9`` stops renewing: its ownership leases expire one lease time after the
last renewal, and the next ``vendor-leases`` tick of another process (a third of the lease time later at
most) takes them — its vendors come back within the lease time plus one tick.

**Fairness: a quota and stickiness.** A process owns at most ``ceil(vendors / alive processes)``
vendors, and keeps those it owns as long as it lives and stays within that quota (above it — another
process joined — it gives back vendors it is not running right now, at its next tick). The quota keeps
one host from taking every vendor at start-up or after a takeover when others are alive; keeping
vendors makes them move only when a process comes or goes, because what a process knows about a vendor
is its own: the circuit breaker (in the worker process the vendor is pinned to), the queue of its tiers,
the catch-up job after an outage. A vendor moving at every tick would cold-start all of it and run the
near tier twice. The quota counts vendors, not their size (the largest vendor may be 40 % of the slots):
weighting by roster size is the next step if one host turns out busier than the others.
"""

from __future__ import annotations

import logging
import math
import threading
import zlib
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from elastic_transport import TransportError
from elasticsearch import ApiError, Elasticsearch

from indexer.leader import LeaseLock
from mappings.registry import alias_name
from sas_core.clock import iso, utcnow

log = logging.getLogger(__name__)

MEMBER_PREFIX = "scheduler-member-"
OWNER_PREFIX = "harvest-owner-"
#: Ownership leases renewed (or claimed) in parallel by one tick.
RENEW_THREADS = 8


def owner_lock_name(vendor: str) -> str:
    return f"{OWNER_PREFIX}{vendor}"


class VendorShares:
    """The vendors this scheduler process harvests (thread-safe)."""

    def __init__(self, es: Elasticsearch, *, prefix: str, holder: str, ttl_s: float, vendors: Iterable[str],
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.es = es
        self.prefix = prefix
        self.holder = holder
        self.ttl_s = ttl_s
        self.clock = clock
        names = sorted(set(vendors))
        # Each process tries the free vendors from its own starting point: two processes starting together
        # do not both race for the same first vendors.
        start = zlib.crc32(holder.encode()) % len(names) if names else 0
        self.vendors = names[start:] + names[:start]
        self.member = LeaseLock(es, prefix=prefix, name=f"{MEMBER_PREFIX}{holder}", ttl_s=ttl_s, holder=holder,
                                clock=clock)
        self._owned: dict[str, LeaseLock] = {}
        self._mutex = threading.Lock()
        self._alive: int | None = None

    # -- what we know ----------------------------------------------------------------------------------

    def owned(self) -> list[str]:
        with self._mutex:
            return sorted(vendor for vendor, lock in self._owned.items() if lock.held)

    def owns(self, vendor: str) -> bool:
        with self._mutex:
            lock = self._owned.get(vendor)
        return lock is not None and lock.held

    def alive(self) -> int:
        """Scheduler processes alive: the unexpired membership leases (ours counted even before it is
        written or visible)."""
        try:
            response = self.es.search(
                index=alias_name(self.prefix, "locks"), size=1000, source_includes=["holder"],
                query={"bool": {"filter": [{"prefix": {"id": MEMBER_PREFIX}},
                                           {"range": {"expires_at": {"gt": iso(self.clock())}}}]}})
        except (ApiError, TransportError) as exc:
            log.warning("scheduler members: cannot read them (%s)", exc)
            return self._alive or 1
        others = {hit["_source"]["holder"] for hit in response["hits"]["hits"]} - {self.holder}
        self._alive = len(others) + 1
        return self._alive

    def quota(self) -> int:
        """At most this many vendors for this process: ``ceil(vendors / alive)``."""
        alive = self._alive if self._alive is not None else self.alive()
        return math.ceil(len(self.vendors) / max(alive, 1))

    # -- taking and giving back ------------------------------------------------------------------------

    def claim(self, vendor: str) -> bool:
        """Whether we own ``vendor`` now: already ours, or free (or expired) and within our quota."""
        if self.owns(vendor):
            return True
        if vendor not in self.vendors or len(self.owned()) >= self.quota():
            return False
        lock = LeaseLock(self.es, prefix=self.prefix, name=owner_lock_name(vendor), ttl_s=self.ttl_s,
                         holder=self.holder, clock=self.clock)
        if not lock.acquire():
            return False
        with self._mutex:
            self._owned[vendor] = lock
        log.info("vendor %s now harvested by %s", vendor, self.holder)
        return True

    def tick(self, *, busy: Iterable[str] = ()) -> list[str]:
        """Renew our membership, then our vendors; give back idle vendors above the quota or take free
        ones up to it. Returns the vendors taken in this tick."""
        # Membership first: when a process dies, its membership expires just before its vendors do, so
        # the tick that finds its vendors free also counts it gone (and its quota lets it take them).
        if not (self.member.held and self.member.renew()):
            self.member.acquire()
        with self._mutex:
            owned = list(self._owned.items())
        # All at once: one renewal is one write (and its fsync) to Elasticsearch, and a loaded node may
        # take a second for it; one after the other, a process owning many vendors would renew the last
        # ones too late.
        with ThreadPoolExecutor(max_workers=min(len(owned), RENEW_THREADS) or 1,
                                thread_name_prefix="vendor-lease") as pool:
            renewed = list(pool.map(lambda item: item[1].renew(), owned))
        for (vendor, _lock), ok in zip(owned, renewed, strict=True):
            if not ok:
                log.warning("vendor %s: ownership lost by %s", vendor, self.holder)
                with self._mutex:
                    self._owned.pop(vendor, None)
        self.alive()
        quota = self.quota()
        mine = self.owned()
        if len(mine) > quota:
            running = set(busy)
            for vendor in sorted(set(mine) - running, reverse=True)[:len(mine) - quota]:
                self._give_back(vendor)
            return []
        # Up to the quota, as many claims at once as vendors wanted (a claim is up to three calls: a
        # takeover after a death should not take three calls per vendor one after the other).
        taken: list[str] = []
        candidates = [vendor for vendor in self.vendors if not self.owns(vendor)]
        while candidates and (wanted := quota - len(self.owned())) > 0:
            batch, candidates = candidates[:wanted], candidates[wanted:]
            with ThreadPoolExecutor(max_workers=min(len(batch), RENEW_THREADS),
                                    thread_name_prefix="vendor-claim") as pool:
                got = list(pool.map(self.claim, batch))
            taken += [vendor for vendor, ok in zip(batch, got, strict=True) if ok]
        return taken

    def _give_back(self, vendor: str) -> None:
        with self._mutex:
            lock = self._owned.pop(vendor, None)
        if lock is not None:
            lock.release()
            log.info("vendor %s given back by %s (above its quota)", vendor, self.holder)

    def release_all(self) -> None:
        """Give back every vendor and the membership (clean stop: the others take them at once)."""
        with self._mutex:
            owned = list(self._owned.values())
            self._owned.clear()
        for lock in owned:
            lock.release()
        self.member.release()


def delete_expired_members(es: Elasticsearch, *, prefix: str, older_than_s: float,
                           clock: Callable[[], datetime] = utcnow) -> int:
    """Delete membership leases expired for ``older_than_s`` (every restart leaves one, with a new
    holder); the leader runs it. Returns how many were deleted."""
    from datetime import timedelta

    index = alias_name(prefix, "locks")
    cutoff = iso(clock() - timedelta(seconds=older_than_s))
    response = es.search(index=index, size=1000, source=False, seq_no_primary_term=True,
                         query={"bool": {"filter": [{"prefix": {"id": MEMBER_PREFIX}},
                                                    {"range": {"expires_at": {"lt": cutoff}}}]}})
    deleted = 0
    for hit in response["hits"]["hits"]:
        try:
            # Compare-and-set: a member that came back (renewed its lease meanwhile) is kept.
            es.delete(index=index, id=hit["_id"], if_seq_no=hit["_seq_no"], if_primary_term=hit["_primary_term"])
            deleted += 1
        except ApiError:
            continue
    return deleted
