"""A benchmark's own indices on the real node: fresh at the start (a previous run's data gone), dropped at the
end unless kept, and never the platform's."""

from __future__ import annotations

from bench.common import bench_indices
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
