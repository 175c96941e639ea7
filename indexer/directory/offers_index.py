"""What a load reads from and writes to the offers index: the fingerprints already there, the
bulk writes, the full load's deletions and the slots of deleted offers."""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import ExitStack

from elasticsearch import Elasticsearch, helpers

from indexer.bulk import BulkWriter, reason_as_index_error
from indexer.directory.run_context import DirectoryRun
from mappings.registry import alias_name
from sas_core.errors import ConfigurationError, DataQualityError


def known_documents(es: Elasticsearch, alias: str) -> dict[str, tuple[str | None, str | None, str | None]]:
    """Every offer id in the index with its fingerprints and source (doc values only: a fast scan)."""
    known: dict[str, tuple[str | None, str | None, str | None]] = {}
    for hit in helpers.scan(es, index=alias, size=10_000, preserve_order=False,
                            query={"query": {"match_all": {}}, "_source": False,
                                   "docvalue_fields": ["content_hash", "participation_hash", "source"]}):
        fields = hit.get("fields") or {}
        known[hit["_id"]] = ((fields.get("content_hash") or [None])[0],
                             (fields.get("participation_hash") or [None])[0],
                             (fields.get("source") or [None])[0])
    return known


def write_offers(run: DirectoryRun, es: Elasticsearch, actions: Iterable[tuple[str, str, bytes | None]]) -> None:
    """Send the actions in chunks on ``directory_bulk_threads`` threads; count results.

    A failed request fails the load (the writer raises); a document Elasticsearch refuses is counted
    (``failed``, ``index_error:<type>``), and so is a deletion of an offer already gone."""
    s = run.summary
    client = es.options(request_timeout=max(60.0, run.settings.es_request_timeout_s))
    writer = BulkWriter(client, index=run.alias, chunk=run.settings.directory_bulk_chunk,
                        threads=max(1, run.settings.directory_bulk_threads), max_chunk_bytes=50 * 1024 * 1024,
                        request_failure="raise", create_conflict="fail", missing_delete_ok=False,
                        failure_reason=reason_as_index_error)
    with writer:
        for op, doc_id, body in actions:
            if body is None:  # a deletion
                writer.delete(doc_id)
            elif op == "index":
                writer.index_raw(doc_id, body)
            else:
                writer.update_raw(doc_id, body)
    s.failed += writer.errors.count
    s.rejected_by_reason.update(writer.errors)
    s.deleted += writer.results["delete:deleted"]
    s.created += writer.result_count("created")
    s.updated += writer.result_count("updated")
    s.unchanged += writer.result_count("noop")


def check_alias(es: Elasticsearch, alias: str) -> None:
    if not es.indices.exists_alias(name=alias):
        raise ConfigurationError(f"index alias {alias} does not exist: run `sas setup` first")


def refresh_setting(es: Elasticsearch, alias: str) -> str | None:
    settings = es.indices.get_settings(index=alias, name="index.refresh_interval").body
    for body in settings.values():
        return body.get("settings", {}).get("index", {}).get("refresh_interval")
    return None


def _protected_by_rejection(doc_id: str, run: DirectoryRun) -> bool:
    # ``ps-<national id>-<place>`` / ``sos-<place>``: a rejected line of that professional, or at that
    # place, may be this very offer. Erring on the side of keeping: a stale offer lives one load longer.
    if doc_id.startswith("ps-"):
        parts = doc_id.split("-", 2)
        return len(parts) == 3 and (parts[1] in run.protected or parts[2] in run.protected_places)
    if doc_id.startswith("sos-"):
        return doc_id[4:] in run.protected_places
    return False


def delete_disappeared(run: DirectoryRun, es: Elasticsearch, sources: list[str]) -> None:
    """Full load: delete the offers of ``sources`` that were in the index before and not in this run.

    Only offers absent from the whole file are candidates: an offer whose professional is named by a
    rejected line is kept (counted in ``kept_rejected``), since the line may be its own. What is left is
    capped (``directory_max_delete_share`` of the offers of these sources, at least
    ``directory_max_delete_floor``): beyond, nothing is deleted and the load fails, because a file that
    lost that many places is far more likely broken (rejected lines that could not be keyed, a cut
    extraction) than a true picture. The harvested slots of the deleted offers go with them.
    """
    seen, wanted = run.seen, set(sources)
    s, settings = run.summary, run.settings
    of_sources = 0
    stale: list[str] = []
    for doc_id, (_c, _p, source) in (run.known or {}).items():
        if source not in wanted:
            continue
        of_sources += 1
        if doc_id in seen:
            continue
        if _protected_by_rejection(doc_id, run):
            s.kept_rejected += 1
        else:
            stale.append(doc_id)
    cap = max(settings.directory_max_delete_floor, int(settings.directory_max_delete_share * of_sources))
    if len(stale) > cap:
        raise DataQualityError(
            f"directory load refused: it would delete {len(stale)} of the {of_sources} offers of "
            f"{', '.join(sorted(wanted))} ({len(stale) / max(of_sources, 1):.1%}), more than the cap of {cap} "
            f"(SAS_DIRECTORY_MAX_DELETE_SHARE={settings.directory_max_delete_share:.1%}, "
            f"SAS_DIRECTORY_MAX_DELETE_FLOOR={settings.directory_max_delete_floor}); nothing was deleted. "
            f"{s.rejected} rejected lines, {s.rejected_unkeyed} of them naming neither a professional nor a "
            f"place: "
            f"check the file; if the removals are real, raise the cap for this load"
        )
    write_offers(run, es, (("delete", doc_id, None) for doc_id in stale))
    _remove_slots_of(run, es, stale)
    gone = set(stale)
    known = run.known or {}
    _remove_slots_of(run, es, _orphan_slot_offers(
        run, es, exists=lambda offer_id: (offer_id in known or offer_id in seen) and offer_id not in gone))


def _orphan_slot_offers(run: DirectoryRun, es: Elasticsearch, *, exists) -> list[str]:
    """Offer ids that slots point at but that no longer exist (left by loads before the slot clean-up
    above, or by an offer deleted by hand): distinct ``offer_id`` values, paged with a composite
    aggregation, so the cost follows the number of offers, not of slots."""
    alias = alias_name(run.settings.index_prefix, "slots")
    if not es.indices.exists_alias(name=alias):
        return []
    orphans: list[str] = []
    after = None
    while True:
        composite = {"size": 10_000, "sources": [{"offer": {"terms": {"field": "offer_id"}}}]}
        if after:
            composite["after"] = after
        answer = es.search(index=alias, size=0, aggs={"offers": {"composite": composite}})
        agg = answer["aggregations"]["offers"]
        orphans += [b["key"]["offer"] for b in agg["buckets"] if not exists(b["key"]["offer"])]
        after = agg.get("after_key")
        if not after or not agg["buckets"]:
            return orphans


def _remove_slots_of(run: DirectoryRun, es: Elasticsearch, offer_ids: list[str]) -> None:
    """Delete the harvested slots of offers that are gone: a slot without its offer would be shown as a
    card with no name. They are not re-attached to another offer: which place a slot belongs to is the
    vendor's answer, and its next harvest writes the slots afresh against the offers that exist then."""
    if not offer_ids:
        return
    alias = alias_name(run.settings.index_prefix, "slots")
    if not es.indices.exists_alias(name=alias):
        return
    es.indices.refresh(index=alias)
    # A scan and bulk deletes rather than ``_delete_by_query``: the node may run without the reindex
    # module, and the slots of a few deleted offers are few.
    for start in range(0, len(offer_ids), 10_000):
        hits = helpers.scan(es, index=alias, size=5000, preserve_order=False,
                            query={"query": {"terms": {"offer_id": offer_ids[start:start + 10_000]}},
                                   "_source": False})
        # Each slot is deleted from the index the scan found it in (one writer per concrete index).
        writers: dict[str, BulkWriter] = {}
        with ExitStack() as stack:
            for hit in hits:
                writer = writers.get(hit["_index"])
                if writer is None:
                    writer = writers[hit["_index"]] = stack.enter_context(BulkWriter(
                        es, index=hit["_index"], chunk=2000, request_failure="raise", missing_delete_ok=False))
                writer.delete(hit["_id"])
        run.summary.slots_removed += sum(writer.results["delete:deleted"] for writer in writers.values())
    es.indices.refresh(index=alias)

