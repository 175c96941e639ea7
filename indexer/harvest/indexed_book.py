"""The harvester's copy of what it has indexed for each vendor, kept between incremental runs: a run's view
of its window (``ExistingSlots``) without reading the window from Elasticsearch again.

Each incremental run used to scan every indexed slot of its window (ids and doc values) before comparing
the vendor's answers with them: in a steady poll, where nothing changed, that scan was most of the cost
(Elasticsearch ≈ 10–25 µs per slot, and the harvester about as much decoding the hits), and the near tier
repeats it every 30 s. The copy makes a steady poll read nothing but what entered the window since the
last run (its far edge moved with the clock).

The copy is the scan of a run's window with the run's own writes applied (the run's journal,
``ExistingSlots.journal``), so it is what a scan would read after the run, as long as nobody else wrote
the vendor's slots in between. Before the copy is used, the run checks that, cheaply:

* the slots alias points at the same concrete indices (a rebuild or a restore replaces everything);
* the vendor's slot count is the one read right after the last run (a directory load deletes the slots
  of offers that are gone, an operator may delete by hand: count changes);
* no other harvest run of the vendor started, ended or is running since the last run of this process
  (another process that took the vendor over for a while wrote its slots: its run records say so).

Any doubt, any failed write of the run (a bulk error, an exception) and the copy is dropped: the next run
scans as before. What the checks cannot see (a stale mark or a content hash edited by hand, without any
deletion) lasts until the range is read again: a range is trusted ``max_age_s`` (15 min) at most. Full
sweeps always scan (they map everything anyway) and keep no journal (millions of writes nationally): the
ranges they overlap are dropped, read again by the next incremental run. The platform's own writes (claims,
``hidden``) are not in the copy and need not be: the run reads expired claims with a query of their own.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime

from elasticsearch import Elasticsearch, NotFoundError

from connectors.vendors.config import VendorConfig
from indexer.harvest.existing_slots import ExistingSlots, Indexed, expired_claims, scan_range, vendor_slots
from indexer.harvest.window import Window
from sas_core.clock import iso

log = logging.getLogger(__name__)

#: Time ranges kept per vendor (the near tier's window, the mid tier's slices, the odd manual run).
MAX_RANGES = 6
#: This process's run ids remembered per vendor.
OWN_RUNS = 64


@dataclass
class IndexedRange:
    """The vendor's indexed slots starting in [low, high] (epoch milliseconds, both included)."""

    low: int
    high: int
    slots: dict[str, Indexed]
    #: ``time.monotonic()`` when the oldest of these slots was read from Elasticsearch.
    read_at: float

    def overlap(self, low: int, high: int) -> int:
        return max(0, min(self.high, high) - max(self.low, low) + 1)

    def apply(self, journal: list[tuple]) -> None:
        """The run's writes, in order: a slot rewritten to start outside the range leaves it."""
        slots, low, high = self.slots, self.low, self.high
        for op in journal:
            kind, slot_id = op[0], op[1]
            if kind == "put":
                if low <= op[4] <= high:
                    slots[slot_id] = (op[2], op[3], False, op[4])
                else:
                    slots.pop(slot_id, None)
            elif kind == "gone":
                slots.pop(slot_id, None)
            else:
                entry = slots.get(slot_id)
                if entry is None:
                    continue
                if kind == "hash":
                    slots[slot_id] = (entry[0], op[2], False, entry[3])
                else:
                    slots[slot_id] = (entry[0], entry[1], kind == "stale", entry[3])

    def fill(self, existing: ExistingSlots, missing: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """Add to ``existing`` this range's slots of the ``missing`` intervals; what is still missing."""
        still: list[tuple[int, int]] = []
        used = False
        for part_low, part_high in missing:
            low, high = max(self.low, part_low), min(self.high, part_high)
            if low > high:
                still.append((part_low, part_high))
                continue
            for slot_id, entry in self.slots.items():
                if low <= entry[3] <= high:
                    existing.add(slot_id, entry)
            used = True
            still += [(a, b) for a, b in ((part_low, low - 1), (high + 1, part_high)) if a <= b]
        if used:
            existing.read_at = min(existing.read_at, self.read_at)
        return still

    def without(self, low: int, high: int) -> list[IndexedRange]:
        """This range minus [low, high]: zero, one or two ranges."""
        pieces = []
        for piece_low, piece_high in ((self.low, min(self.high, low - 1)), (max(self.low, high + 1), self.high)):
            if piece_low <= piece_high:
                pieces.append(IndexedRange(piece_low, piece_high, {
                    slot_id: entry for slot_id, entry in self.slots.items() if piece_low <= entry[3] <= piece_high},
                    self.read_at))
        return pieces


@dataclass
class VendorCopy:
    """What this process knows it indexed for one vendor, and how to tell nobody else wrote since."""

    ranges: list[IndexedRange] = field(default_factory=list)
    #: (concrete indices behind the slots alias, the vendor's slot count) right after the last run.
    token: tuple[tuple[str, ...], int] | None = None
    last_started: datetime | None = None


def _ms(instant: datetime) -> int:
    return int(instant.timestamp() * 1000)


class IndexedBook:
    """Per vendor, the copy of what is indexed (``VendorCopy``). One per harvester; a vendor's runs come
    one at a time (its lease), so a copy is only ever taken by one run: ``existing`` removes it,
    ``keep`` puts the run's result back — a run that fails half-way leaves nothing behind to trust."""

    def __init__(self, *, es: Elasticsearch, slots_alias: str, runs_alias: str, enabled: bool = True,
                 max_age_s: float = 900.0) -> None:
        self.es = es
        self.slots_alias = slots_alias
        self.runs_alias = runs_alias
        self.enabled = enabled
        self.max_age_s = max_age_s
        self._copies: dict[str, VendorCopy] = {}
        #: Per vendor, this process's latest run ids: its own run records are not someone else's writes
        #: (even when runs are given a ``now`` of their own, as benchmarks do, and overlap in time).
        self._own_runs: dict[str, deque[str]] = {}
        #: ... and the other processes' runs already seen (each made one copy unsure, once).
        self._foreign_runs: dict[str, deque[str]] = {}

    def existing(self, *, vendor: VendorConfig, window: Window, now: datetime,
                 run_id: str) -> tuple[ExistingSlots, VendorCopy | None, int]:
        """The run's view of its window, the vendor's copy (``None``: none to keep up to date), and the
        slots read from Elasticsearch for it."""
        copy = self._copies.pop(vendor.name, None) if self.enabled else None
        own = self._own_runs.setdefault(vendor.name, deque(maxlen=OWN_RUNS))
        own.append(run_id)
        if copy is not None and not self._nobody_else_wrote(vendor, copy, own):
            log.info("harvest of %s: indexed slots changed outside this process; window read again", vendor.name)
            copy = None
        existing = ExistingSlots(journaling=self.enabled and window.mode == "incremental")
        low, high = _ms(window.start), _ms(window.end)
        missing = [(low, high)]
        existing.read_at = time.monotonic()
        if copy is not None:
            # A bound on trusting the checks: whatever they cannot see (a hand-edited stale mark, say)
            # lasts until the range is read again.
            copy.ranges = [held for held in copy.ranges if existing.read_at - held.read_at < self.max_age_s]
        if window.mode == "incremental" and copy is not None:
            # The window from the ranges held, the most overlapping first; what none holds is read: what
            # entered the window since the last run (its far edge moves with the clock), a slice boundary.
            for held in sorted(copy.ranges, key=lambda r: r.overlap(low, high), reverse=True):
                missing = held.fill(existing, missing)
        read = 0
        for part_low, part_high in missing:
            read += scan_range(self.es, existing, slots_alias=self.slots_alias, vendor=vendor,
                               start_range={"gte": part_low, "lte": part_high, "format": "epoch_millis"})
        expired_claims(self.es, existing, slots_alias=self.slots_alias, vendor=vendor, window=window, now=now)
        return existing, (copy or VendorCopy()) if self.enabled else None, read

    def keep(self, *, vendor: VendorConfig, window: Window, existing: ExistingSlots, copy: VendorCopy | None,
             started: datetime) -> None:
        """A run whose writes all went in: its journal applied to the vendor's copy, its window kept (an
        incremental run), and the token to check against before the next run. ``existing`` is the
        copy's from now on (the run is over)."""
        if copy is None:
            return
        journal = existing.journal
        low, high = _ms(window.start), _ms(window.end)
        # Slots that started before the run are in no later window (windows start at now or later).
        ranges = [kept for kept in copy.ranges if kept.high >= _ms(started)]
        if not existing.journaling:
            # A full sweep: what it overlaps is read again by the next incremental run.
            ranges = [kept for kept in ranges if not kept.overlap(low, high)]
        for kept in ranges:
            kept.apply(journal)
        if window.mode == "incremental":
            fresh = IndexedRange(low, high, existing.by_id, existing.read_at)
            fresh.apply(journal)
            # The window supersedes what other ranges held of it (both are true; one copy of a slot).
            ranges = [fresh, *(piece for kept in ranges for piece in
                               (kept.without(low, high) if kept.overlap(low, high) else [kept]))]
        copy.ranges = ranges[:MAX_RANGES]
        copy.token = self._token(vendor)
        copy.last_started = started
        self._copies[vendor.name] = copy

    # -- the checks --------------------------------------------------------------------------------------

    def _token(self, vendor: VendorConfig) -> tuple[tuple[str, ...], int]:
        try:
            indices = tuple(sorted(self.es.indices.get_alias(name=self.slots_alias)))
        except NotFoundError:
            indices = ()
        count = self.es.count(index=self.slots_alias, query={"bool": {"filter": vendor_slots(vendor)}})["count"]
        return indices, count

    def _nobody_else_wrote(self, vendor: VendorConfig, copy: VendorCopy, own: deque[str]) -> bool:
        if copy.token is None or copy.last_started is None:
            return False
        token_holds = self._token(vendor) == copy.token
        since = iso(copy.last_started)
        # Run records are written without a refresh: one written a moment ago must be seen too.
        self.es.indices.refresh(index=self.runs_alias)
        answer = self.es.search(index=self.runs_alias, size=OWN_RUNS, source=False, filter_path="hits.hits._id",
                                query={"bool": {
            "filter": [{"term": {"vendor": vendor.name}}, {"term": {"kind": "harvest"}}],
            "should": [{"range": {"started_at": {"gte": since}}}, {"range": {"ended_at": {"gte": since}}},
                       {"term": {"status": "running"}}],
            "minimum_should_match": 1,
            "must_not": [{"ids": {"values": list(own)}}],
        }})
        # Each run of another process counts once: runs given a ``now`` of their own (benchmarks, tests)
        # would otherwise match the time ranges for ever.
        seen = self._foreign_runs.setdefault(vendor.name, deque(maxlen=4 * OWN_RUNS))
        foreign = [hit["_id"] for hit in (answer.get("hits") or {}).get("hits") or [] if hit["_id"] not in seen]
        seen.extend(foreign)
        return token_holds and not foreign
