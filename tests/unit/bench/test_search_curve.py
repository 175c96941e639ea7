"""The search curve's arithmetic, its PNG and the kept preparation's manifest (no network)."""

from __future__ import annotations

import json

import pytest

from bench.search.curve import extrapolate, fit_line, merge_points, plot_curve
from bench.search.prepare import STAGES, Manifest, Shape, _harvest_fresh
from sas_core.clock import iso, utcnow


def _point(slots: int, api_p95: float, raw_p95: float) -> dict:
    return {"size": f"{slots}", "dataset": {"slots_next_7_days": slots},
            "api": {"p50_ms": api_p95 / 2, "p95_ms": api_p95, "p99_ms": api_p95 * 1.5, "qps": 30},
            "raw_es": {"p50_ms": raw_p95 / 2, "p95_ms": raw_p95, "p99_ms": raw_p95 * 1.5, "qps": 30},
            "capacity_qps": {"api": 150, "raw_es": 200}}


def test_fit_line_recovers_slope_and_intercept():
    slope, intercept = fit_line([1, 2, 3, 4], [5, 7, 9, 11])
    assert slope == pytest.approx(2.0)
    assert intercept == pytest.approx(3.0)


def test_extrapolation_follows_the_measured_line_to_the_national_size():
    points = [_point(3_000_000, 28.0, 21.0), _point(9_000_000, 34.0, 25.0)]
    national = extrapolate(points, slots=20_000_000)
    assert national is not None
    # 1 ms per million slots for the API, 2/3 ms for Elasticsearch alone.
    assert national["api"]["p95_ms"] == pytest.approx(45.0)
    assert national["raw_es"]["p95_ms"] == pytest.approx(32.3, abs=0.1)
    assert national["api"]["ms_per_million_slots"]["p95_ms"] == pytest.approx(1.0)
    assert extrapolate(points[:1]) is None


def test_sizes_measured_apart_accumulate_on_one_curve():
    previous = [{**_point(3_000_000, 28.0, 21.0), "size": "1x", "targets_met": {"api_p95_met": True}},
                {**_point(20_000_000, 60.0, 40.0), "size": "national"}]
    measured = [{**_point(9_000_000, 34.0, 25.0), "size": "3x"}, {**_point(21_000_000, 55.0, 38.0), "size": "national"}]
    merged = merge_points(previous, measured)
    # The 1x point kept (without its old judgement), the national one replaced, smallest first.
    assert [(p["size"], p["dataset"]["slots_next_7_days"]) for p in merged] == [
        ("1x", 3_000_000), ("3x", 9_000_000), ("national", 21_000_000)]
    assert "targets_met" not in merged[0]
    assert merge_points([], measured) == sorted(measured, key=lambda p: p["dataset"]["slots_next_7_days"])


def test_plot_writes_a_png(tmp_path):
    points = [_point(3_000_000, 28.0, 21.0), _point(9_000_000, 34.0, 25.0)]
    path = plot_curve(points, path=tmp_path / "curve.png", extrapolated=extrapolate(points))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 10_000


def test_manifest_keeps_stages_of_the_same_shape_only(tmp_path):
    shape = Shape(places=1000, seed=1, gp_participation=0.9, other_participation=0.5, vendor_share=0.9)
    manifest = Manifest.open(tmp_path, shape=shape, prefix="p")
    manifest.done("generate", generated={"rpps": "x"})
    manifest.done("addresses", count=10)
    assert set(Manifest.open(tmp_path, shape=shape, prefix="p").stages) == {"generate", "addresses"}
    # Another shape or another prefix: nothing is kept.
    other = Shape(places=2000, seed=1, gp_participation=0.9, other_participation=0.5, vendor_share=0.9)
    assert Manifest.open(tmp_path, shape=other, prefix="p").stages == {}
    assert Manifest.open(tmp_path, shape=shape, prefix="q").stages == {}
    # Redoing a stage forgets the later ones.
    kept = Manifest.open(tmp_path, shape=shape, prefix="p")
    kept.drop_from("addresses", STAGES)
    assert set(kept.stages) == {"generate"}
    assert json.loads((tmp_path / "prepared.json").read_text())["prefix"] == "p"


def test_a_harvest_older_than_its_budget_is_redone():
    assert _harvest_fresh({"finished_at": "2000-01-01T00:00:00.000Z"}, max_age_h=12) is False
    assert _harvest_fresh({}, max_age_h=12) is False
    ok = {"vendor": "a", "status": "success"}
    assert _harvest_fresh({"finished_at": iso(utcnow()), "slots": 10, "runs": [ok]}, max_age_h=12) is True
    # A harvest that wrote nothing, or whose runs did not all succeed, is done again.
    assert _harvest_fresh({"finished_at": iso(utcnow()), "slots": 0, "runs": [ok]}, max_age_h=12) is False
    assert _harvest_fresh({"finished_at": iso(utcnow()), "slots": 10,
                           "runs": [ok, {"vendor": "b", "status": "failed"}]}, max_age_h=12) is False
