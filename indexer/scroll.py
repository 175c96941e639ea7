"""Reading every hit of a query in pages, through a scroll, decoding only what the caller reads.

Not ``elasticsearch.helpers.scan`` on the harvester's paths: it decodes every hit's index name, null score
and sort value and hands each hit out through its generator. Measured on the run's scan of indexed slots:
7.7 µs of CPU per slot against 3.8 µs for this loop; on whole steady sweeps (``bench.steady_state``, the
two alternated in one process), 11 % less harvester CPU per unchanged slot.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from elasticsearch import Elasticsearch, NotFoundError, helpers

_NOTHING: dict = {}


def scroll_pages(es: Elasticsearch, *, index: str, query: dict, page_size: int, hit_keys: Sequence[str],
                 **body) -> Iterator[list[dict]]:
    """Pages of the hits of ``query``, in index order; each hit holds only ``hit_keys`` (``_id``,
    ``_source``, ``fields``…). ``body``: the rest of the search (``_source``, ``docvalue_fields``…)."""
    filter_path = ",".join(["_scroll_id", "_shards.failed", "_shards.total", *(f"hits.hits.{k}" for k in hit_keys)])
    answer = es.search(index=index, query=query, scroll="2m", size=page_size, sort=["_doc"], filter_path=filter_path,
                       **body)
    scroll_id = answer.get("_scroll_id")
    try:
        while True:
            shards = answer.get("_shards") or _NOTHING
            if shards.get("failed"):
                # As helpers.scan does: a page that missed shards is not the whole answer.
                raise helpers.ScanError(scroll_id, f"scroll of {index}: {shards['failed']} of "
                                                   f"{shards.get('total')} shards failed")
            hits = (answer.get("hits") or _NOTHING).get("hits")
            if not hits:
                return
            yield hits
            answer = es.scroll(scroll_id=scroll_id, scroll="2m", filter_path=filter_path)
            scroll_id = answer.get("_scroll_id") or scroll_id
    finally:
        if scroll_id:
            try:
                es.clear_scroll(scroll_id=scroll_id)
            except NotFoundError:   # expired meanwhile: nothing left to free
                pass
