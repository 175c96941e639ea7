"""ReasonCounts: the one "counts by reason" type of run summaries."""

from __future__ import annotations

from sas_core.counts import ReasonCounts


def test_counts_like_a_counter_and_reports_in_three_forms():
    counts = ReasonCounts()
    counts["missing_id"] += 2
    counts.update(["bad_date", "missing_id"])
    assert counts.count == 4
    assert counts.as_dict() == {"bad_date": 1, "missing_id": 3}
    assert list(counts.as_dict()) == ["bad_date", "missing_id"]
    assert counts.as_items() == [{"reason": "bad_date", "count": 1}, {"reason": "missing_id", "count": 3}]
    assert counts.describe(1) == "missing_id=3"


def test_prefixed_merges_parts_under_their_prefixes():
    merged = ReasonCounts.prefixed({"": {"bad_slot": 2}, "flag:": {"no_geo": 1}, "error:": ReasonCounts(timeout=3)})
    assert merged.as_dict() == {"bad_slot": 2, "error:timeout": 3, "flag:no_geo": 1}
