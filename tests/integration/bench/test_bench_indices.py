"""A benchmark's own indices on the real node: fresh at the start (a previous run's data gone), dropped at the
end unless kept, and never the platform's."""

from __future__ import annotations

from bench.common import bench_indices, wait_for_merges
from mappings.registry import alias_name


def test_bench_indices_start_empty_and_are_dropped_at_the_end(settings, es, indices):
    prefix = f"{settings.index_prefix}bench"
    with bench_indices(settings, prefix=prefix, keep=False) as bench_es:
        offers = alias_name(prefix, "offers")
        bench_es.index(index=offers, id="left-over", document={"id": "left-over", "kind": "ps"}, refresh=True)
    assert not es.indices.exists_alias(name=alias_name(prefix, "offers"))
    with bench_indices(settings, prefix=prefix, keep=True) as bench_es:
        # The previous run's document is gone: the set is rebuilt empty.
        assert bench_es.count(index=alias_name(prefix, "offers"))["count"] == 0
    assert es.indices.exists_alias(name=alias_name(prefix, "offers"))
    # The platform's own indices (the session prefix) were never touched.
    assert es.indices.exists_alias(name=alias_name(settings.index_prefix, "offers"))
    with bench_indices(settings, prefix=prefix, keep=False):
        pass
    assert not es.indices.exists_alias(name=alias_name(prefix, "offers"))


def test_a_search_bench_waits_for_merges_to_have_stopped_for_a_while(es):
    """The node's merge statistics are read for real: once none runs for ``quiet_s`` in a row, it returns,
    having waited at least that long; a zero timeout gives up at once and says whether merges had stopped."""
    logged: list[str] = []
    waited = wait_for_merges(es, log=logged.append, quiet_s=0.6, poll_s=0.2, timeout_s=60)
    assert waited["merges_stopped"] is True and 0.6 <= waited["waited_s"] < 60
    given_up = wait_for_merges(es, log=logged.append, quiet_s=30, poll_s=0.2, timeout_s=0)
    assert given_up["merges_stopped"] is False and given_up["waited_s"] < 5
    assert any("measuring anyway" in line for line in logged)
