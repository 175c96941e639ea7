"""The ranges of the harvester's copy of what it indexed (``indexer.harvest.indexed_book``): the run's
journal applied in order, a window filled from ranges and what is left to read, a range cut by another."""

from __future__ import annotations

from datetime import datetime, timezone

from indexer.harvest.existing_slots import ExistingSlots
from indexer.harvest.indexed_book import IndexedRange

START = datetime(2026, 12, 7, 8, 0, tzinfo=timezone.utc)
T = int(START.timestamp() * 1000)
MINUTE = 60_000


def _range(low: int, high: int, starts: dict[str, int], read_at: float = 10.0) -> IndexedRange:
    return IndexedRange(low, high, {slot_id: ("k1", f"h-{slot_id}", False, start)
                                    for slot_id, start in starts.items()}, read_at)


def test_the_journal_is_applied_in_order_and_a_slot_moved_out_of_the_range_leaves_it():
    held = _range(T, T + 60 * MINUTE, {"a": T, "b": T + MINUTE, "c": T + 2 * MINUTE, "d": T + 3 * MINUTE})
    existing = ExistingSlots(journaling=True)
    existing.wrote("e", "k2", "h-e", START.replace(minute=30))          # created inside
    existing.wrote("a", "k1", "h-a2", START.replace(hour=12))            # rewritten to start outside
    existing.rehashed("b", "h-b2")
    existing.staled("c")
    existing.deleted("d")
    existing.staled("zz")                                                  # not held: nothing to do
    existing.staled("e")
    existing.freshened("e")
    held.apply(existing.journal)
    unkept = ExistingSlots()   # a full sweep's: no journal
    unkept.deleted("b")
    assert unkept.journal == []
    assert held.slots == {"b": ("k1", "h-b2", False, T + MINUTE), "c": ("k1", "h-c", True, T + 2 * MINUTE),
                          "e": ("k2", "h-e", False, T + 30 * MINUTE)}


def test_a_window_is_filled_from_ranges_and_what_none_holds_is_left_to_read():
    near = _range(T, T + 10 * MINUTE, {"a": T, "b": T + 10 * MINUTE}, read_at=5.0)
    later = _range(T + 20 * MINUTE, T + 30 * MINUTE, {"c": T + 25 * MINUTE})
    existing = ExistingSlots(read_at=100.0)
    missing = [(T + 5 * MINUTE, T + 40 * MINUTE)]
    missing = near.fill(existing, missing)
    assert missing == [(T + 10 * MINUTE + 1, T + 40 * MINUTE)]
    missing = later.fill(existing, missing)
    assert missing == [(T + 10 * MINUTE + 1, T + 20 * MINUTE - 1), (T + 30 * MINUTE + 1, T + 40 * MINUTE)]
    assert set(existing.by_id) == {"b", "c"} and existing.by_key == {"k1": {"b", "c"}}
    assert existing.read_at == 5.0          # as old as the oldest range it came from


def test_a_range_minus_a_window_keeps_what_is_outside_it():
    held = _range(T, T + 60 * MINUTE, {"a": T, "b": T + 20 * MINUTE, "c": T + 60 * MINUTE})
    inside = held.without(T + 10 * MINUTE, T + 30 * MINUTE)
    assert [(p.low, p.high, set(p.slots)) for p in inside] == [
        (T, T + 10 * MINUTE - 1, {"a"}), (T + 30 * MINUTE + 1, T + 60 * MINUTE, {"c"})]
    assert held.without(T - MINUTE, T + 60 * MINUTE) == []
    assert held.overlap(T + 60 * MINUTE, T + 90 * MINUTE) == 1 and held.overlap(T + 61 * MINUTE, T + 90 * MINUTE) == 0
