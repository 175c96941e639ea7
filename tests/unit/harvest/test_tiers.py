"""Freshness tiers: windows and cadences from the vendors file, the legacy keys' meaning kept, sweeps
sliced, and request windows of at most 72 h."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from connectors.vendors.config import parse_vendors
from connectors.vendors.queries import request_windows
from indexer.harvest.window import Window
from sas_core.errors import ConfigurationError

NOW = datetime(2026, 12, 1, 9, 30, 15, 123456, tzinfo=timezone.utc)
BASE = {"name": "acme", "base_url": "http://127.0.0.1:9/acme/fhir"}


def one(**fields) -> object:
    return parse_vendors({"vendors": [{**BASE, **fields}]})[0]


def test_default_tiers_near_mid_far():
    vendor = one()
    tiers = [(t.name, t.start_h, t.end_h, t.every_min, t.sweep, t.slice_h) for t in vendor.schedule_tiers]
    assert tiers == [("near", 0, 4, 0.5, False, None), ("mid", 4, 48, 10, False, 22),
                     ("far", 48, 168, 60, True, 24)]
    near, mid, far = (Window.for_tier(t, now=NOW) for t in vendor.schedule_tiers)
    start = NOW.replace(microsecond=0)
    assert (near.start, near.end, near.mode, near.tier) == (start, start + timedelta(hours=4), "incremental", "near")
    assert (mid.start, mid.end) == (start + timedelta(hours=4), start + timedelta(hours=48))
    assert (far.start, far.end, far.mode) == (start + timedelta(hours=48), start + timedelta(days=7), "full")


def test_tiers_from_the_vendors_file_and_defaults_block():
    vendors = parse_vendors({
        "defaults": {"tiers": [{"name": "now", "end_h": 2, "every_min": 0.25},
                               {"name": "later", "start_h": 2, "end_h": 72, "every_min": 5, "sweep": True}]},
        "vendors": [BASE, {**BASE, "name": "other", "tiers": [{"name": "all", "end_h": 24, "every_min": 3}]}],
    })
    assert [(t.name, t.start_h, t.end_h, t.every_min) for t in vendors[0].schedule_tiers] == [
        ("now", 0, 2, 0.25), ("later", 2, 72, 5)]
    assert [t.name for t in vendors[1].schedule_tiers] == ["all"]
    assert vendors[0].tier("later").sweep and not vendors[0].tier("now").sweep


@pytest.mark.parametrize("tiers, message", [
    ([{"name": "x", "start_h": 5, "end_h": 4, "every_min": 1}], "end_h must be after start_h"),
    ([{"name": "x", "end_h": 4, "every_min": 1}, {"name": "x", "end_h": 8, "every_min": 2}], "unique"),
    ([], "at least one tier"),
    ([{"name": "x", "end_h": 4, "every_min": 0}], "every_min"),
])
def test_bad_tiers_are_refused(tiers, message):
    with pytest.raises(ConfigurationError, match=message):
        one(tiers=tiers)


def test_legacy_keys_keep_their_meaning():
    # A vendors file written before tiers: its incremental / full schedule is exactly what runs.
    vendor = one(incremental_every_min=3, incremental_window_h=36, full_every_min=90)
    tiers = [(t.name, t.start_h, t.end_h, t.every_min, t.sweep, t.slice_h) for t in vendor.schedule_tiers]
    assert tiers == [("incremental", 0, 36, 3, False, None), ("full", 0, 168, 90, True, None)]
    # One legacy key is enough (the others keep their old defaults), also through ``defaults``.
    (vendor,) = parse_vendors({"defaults": {"full_window_days": 3}, "vendors": [BASE]})
    assert [(t.name, t.end_h, t.every_min) for t in vendor.schedule_tiers] == [("incremental", 48, 2),
                                                                            ("full", 72, 60)]
    # The legacy modes of manual runs resolve whatever the tiers.
    default = one()
    assert Window.for_mode(default, "incremental", now=NOW).end - Window.for_mode(
        default, "incremental", now=NOW).start == timedelta(hours=48)
    assert Window.for_mode(default, "full", now=NOW).mode == "full"
    with pytest.raises(ConfigurationError, match="unknown tier"):
        default.tier("nope")


def test_sweep_slices_cover_the_window_without_gaps():
    far = Window.for_tier(one().tier("far"), now=NOW)
    slices = far.slices(24)
    assert len(slices) == 5 and slices[0].start == far.start and slices[-1].end == far.end
    assert all(a.end == b.start for a, b in zip(slices, slices[1:], strict=False))
    assert all(s.end - s.start == timedelta(hours=24) and s.tier == "far" and s.mode == "full" for s in slices)
    assert far.slices(None) == [far] and far.slices(500) == [far]


def test_request_windows_at_most_72_hours_none_overlapping():
    start = NOW.replace(microsecond=0)
    windows = request_windows(start, start + timedelta(days=7), max_hours=72)
    assert len(windows) == 3
    assert windows[0] == (start, start + timedelta(hours=72) - timedelta(seconds=1))
    assert windows[1][0] == start + timedelta(hours=72) and windows[-1][1] == start + timedelta(days=7)
    assert all(high - low <= timedelta(hours=72) for low, high in windows)
    assert all(b[0] - a[1] == timedelta(seconds=1) for a, b in zip(windows, windows[1:], strict=False))
    # A window within the limit is sent as it is.
    assert request_windows(start, start + timedelta(hours=72)) == [(start, start + timedelta(hours=72))]
