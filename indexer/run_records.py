"""Run records: one ``harvest_runs`` document per harvest run or directory load (the dashboards, the
harvest-health page and the next incremental refresh read them).

A harvest writes its document twice: ``running`` when it starts, the outcome when it ends. A run killed
in between leaves the ``running`` document, and the next run of the vendor (holding the vendor's lease)
marks it ``interrupted`` instead of there being no trace at all.
"""

from __future__ import annotations

import logging
from datetime import datetime

from elastic_transport import TransportError
from elasticsearch import ApiError, ConflictError, Elasticsearch

from mappings.harvest_runs import HarvestRunDoc
from mappings.registry import alias_name
from sas_core.clock import iso, utcnow

log = logging.getLogger(__name__)

#: Errors kept verbatim in a run document (the rest are only counted).
MAX_ERRORS = 20


def record_run(es: Elasticsearch, *, prefix: str, document: dict, refresh: bool = False) -> bool:
    """Write ``document`` (checked against the ``harvest_runs`` model first: a mismatch is a bug of its
    builder and raises); ``False`` when Elasticsearch did not take it — the run itself is done, and
    losing its record must not hide its outcome from the caller."""
    HarvestRunDoc.model_validate(document)
    try:
        es.index(index=alias_name(prefix, "harvest_runs"), id=document["id"], document=document,
                 refresh=refresh or None)
    except Exception as exc:  # noqa: BLE001 - see the docstring
        log.error("%s run %s could not be recorded (%s): %s", document["kind"], document["id"],
                  document["status"], exc)
        return False
    return True


def record_running(es: Elasticsearch, *, prefix: str, run_id: str, vendor: str, mode: str,
                   started_at: datetime) -> bool:
    """The ``running`` document of a harvest that starts (overwritten by its outcome)."""
    document = HarvestRunDoc(id=run_id, kind="harvest", vendor=vendor, mode=mode, started_at=started_at,
                             status="running").model_dump(mode="json")
    return record_run(es, prefix=prefix, document=document)


def mark_interrupted_runs(es: Elasticsearch, *, prefix: str, vendor: str, now: datetime | None = None) -> int:
    """Mark ``interrupted`` every ``running`` harvest document of ``vendor``; returns how many.

    Call it only while holding the vendor's run lease: no other run of the vendor can then be going on,
    so a ``running`` document is the trace of a run that died (killed, machine lost) before its end."""
    ended = iso(now or utcnow())
    alias = alias_name(prefix, "harvest_runs")
    message = "interrupted: the run ended without recording its outcome (process killed or lost); its lease expired"
    count = 0
    try:
        # Search and compare-and-set updates (a handful of documents): no dependency on the reindex
        # module that ``_update_by_query`` needs.
        es.indices.refresh(index=alias)
        # ``source`` takes a list of fields too (the client's stub only says bool or mapping).
        hits = es.search(index=alias, size=100, seq_no_primary_term=True,
                         source=["errors"], query={  # type: ignore[arg-type]
            "bool": {"filter": [{"term": {"kind": "harvest"}}, {"term": {"vendor": vendor}},
                                {"term": {"status": "running"}}]}})["hits"]["hits"]
        for hit in hits:
            errors = [*(hit["_source"].get("errors") or []), message][:MAX_ERRORS]
            try:
                es.update(index=hit["_index"], id=hit["_id"], if_seq_no=hit["_seq_no"],
                          if_primary_term=hit["_primary_term"],
                          doc={"status": "interrupted", "ended_at": ended, "errors": errors})
                count += 1
            except ConflictError:
                pass  # rewritten meanwhile: not ours to mark
    except (ApiError, TransportError) as exc:
        log.error("harvest runs of %s: interrupted runs could not be marked: %s", vendor, exc)
    if count:
        log.warning("harvest of %s: %d earlier run(s) marked interrupted", vendor, count)
    return count
