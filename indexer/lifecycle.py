"""Index lifecycle: create what is missing (``sas setup``), migrate to a new mapping version
(``sas migrate``: new index, scan + bulk copy (``indexer.bulk``), atomic alias swap, previous index kept), roll back.

Only core Elasticsearch APIs are used (no ``_reindex`` module in the minimal distribution): the copy is
a client-side scan + bulk.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import orjson
from elasticsearch import Elasticsearch, NotFoundError, helpers
from elasticsearch.exceptions import BadRequestError

from indexer.bulk import BulkWriter
from mappings.registry import INDICES, IndexSpec, spec

_VERSION_RE = re.compile(r"-v(\d+)$")


@dataclass(frozen=True)
class IndexState:
    """What ``sas setup`` / ``sas migrate`` did or found for one logical index."""

    name: str
    alias: str
    index: str
    action: str  # created | unchanged | outdated | migrated | rolled_back
    documents: int | None = None
    previous_index: str | None = None


def indices_behind(es: Elasticsearch, alias: str) -> list[str]:
    """Concrete indices the alias points to (empty when the alias does not exist)."""
    try:
        return sorted(es.indices.get_alias(name=alias).body.keys())
    except NotFoundError:
        return []


def _version_of(index: str) -> int | None:
    match = _VERSION_RE.search(index)
    return int(match.group(1)) if match else None


def _create_index(es: Elasticsearch, *, index: str, index_spec: IndexSpec, overrides: dict | None = None) -> bool:
    """Create ``index`` with the spec's body (``overrides`` merged into its settings, e.g. the national
    shards / replicas); ``False`` when it already existed."""
    body = index_spec.body
    if overrides:
        body = {**body, "settings": {**body.get("settings", {}), **overrides}}
    try:
        es.indices.create(index=index, **body)
        return True
    except BadRequestError as exc:
        if exc.error == "resource_already_exists_exception":
            return False
        raise


def setup_indices(es: Elasticsearch, *, prefix: str, overrides: dict[str, dict] | None = None) -> list[IndexState]:
    """Create every missing index and alias, idempotently. Never changes an existing index.
    ``overrides``: per logical index, settings that replace the mapping's at creation (``indexer.national``)."""
    states: list[IndexState] = []
    for index_spec in INDICES:
        alias = index_spec.alias(prefix)
        target = index_spec.index(prefix)
        current = indices_behind(es, alias)
        if current:
            action = "unchanged" if current == [target] else "outdated"
            states.append(IndexState(index_spec.name, alias, ",".join(current), action))
            continue
        _create_index(es, index=target, index_spec=index_spec, overrides=(overrides or {}).get(index_spec.name))
        es.indices.update_aliases(
            actions=[{"add": {"index": target, "alias": alias, "is_write_index": True}}]
        )
        states.append(IndexState(index_spec.name, alias, target, "created"))
    return states


def missing_aliases(es: Elasticsearch, *, prefix: str) -> list[str]:
    """Aliases that ``sas setup`` would create (what ``/readyz`` checks)."""
    return [s.alias(prefix) for s in INDICES if not es.indices.exists_alias(name=s.alias(prefix))]


def migrate_index(es: Elasticsearch, *, prefix: str, name: str, chunk_size: int = 2000) -> IndexState:
    """Move alias ``<prefix>-<name>`` to the index of the current mapping version.

    Builds ``<prefix>-<name>-v<N>``, copies every document from the index behind the alias (scan +
    bulk), refreshes, then swaps the alias in one atomic ``_aliases`` call. The previous index is kept
    for rollback. Writers should be paused meanwhile (documents written during the copy would stay in
    the old index); ``sas migrate`` is an operator action.
    """
    index_spec = spec(name)
    alias = index_spec.alias(prefix)
    target = index_spec.index(prefix)
    current = indices_behind(es, alias)
    if not current:
        setup_indices(es, prefix=prefix)
        return IndexState(name, alias, target, "created")
    if current == [target]:
        return IndexState(name, alias, target, "unchanged")
    if len(current) != 1:
        raise RuntimeError(f"alias {alias} points to several indices {current}; fix it by hand first")
    source = current[0]
    _create_index(es, index=target, index_spec=index_spec)
    es.indices.put_settings(index=target, settings={"index": {"refresh_interval": "-1"}})
    copy_documents(es, source=source, target=target, chunk_size=chunk_size)
    refresh = index_spec.body.get("settings", {}).get("refresh_interval", "1s")
    es.indices.put_settings(index=target, settings={"index": {"refresh_interval": refresh}})
    es.indices.refresh(index=target)
    copied = es.count(index=target)["count"]
    expected = es.count(index=source)["count"]
    if copied != expected:
        raise RuntimeError(f"migration of {alias}: copied {copied} documents of {expected}; alias not moved")
    es.indices.update_aliases(
        actions=[
            {"remove": {"index": source, "alias": alias}},
            {"add": {"index": target, "alias": alias, "is_write_index": True}},
        ]
    )
    return IndexState(name, alias, target, "migrated", documents=copied, previous_index=source)


def copy_documents(es: Elasticsearch, *, source: str, target: str, chunk_size: int = 2000) -> int:
    """Copy every document of ``source`` into ``target`` (scroll scan + bulk), keeping ids.

    (The client's ``helpers.reindex`` probes the data-stream API, absent from the minimal distribution.)
    One writer thread, as the copy always was; any failure stops the migration (``BulkIndexError`` for
    refused documents): the alias must not move to an incomplete copy.
    """
    dumps = orjson.dumps
    with BulkWriter(es, index=target, chunk=chunk_size, request_failure="raise", create_conflict="fail",
                    missing_delete_ok=False) as writer:
        for hit in helpers.scan(es, index=source, size=chunk_size, preserve_order=False):
            writer.index_raw(hit["_id"], dumps(hit["_source"]))
    if writer.errors:
        raise helpers.BulkIndexError(f"{writer.errors.count} document(s) failed to index.",
                                     [{"error": message} for message in writer.error_messages])
    return writer.results["index:created"] + writer.results["index:updated"]


def migrate_all(es: Elasticsearch, *, prefix: str) -> list[IndexState]:
    """``migrate_index`` for every logical index."""
    return [migrate_index(es, prefix=prefix, name=s.name) for s in INDICES]


def rollback_index(es: Elasticsearch, *, prefix: str, name: str) -> IndexState:
    """Point the alias back to the newest older version index that still exists."""
    index_spec = spec(name)
    alias = index_spec.alias(prefix)
    current = indices_behind(es, alias)
    if len(current) != 1:
        raise RuntimeError(f"alias {alias} points to {current or 'nothing'}: nothing to roll back")
    current_version = _version_of(current[0]) or 0
    older = sorted(
        (v, idx)
        for idx in es.indices.get(index=f"{prefix}-{name}-v*").body
        if (v := _version_of(idx)) is not None and v < current_version
    )
    if not older:
        raise RuntimeError(f"no older index of {alias} to roll back to")
    previous = older[-1][1]
    es.indices.update_aliases(
        actions=[
            {"remove": {"index": current[0], "alias": alias}},
            {"add": {"index": previous, "alias": alias, "is_write_index": True}},
        ]
    )
    return IndexState(name, alias, previous, "rolled_back", previous_index=current[0])


def drop_prefix(es: Elasticsearch, *, prefix: str) -> list[str]:
    """Delete every index named ``<prefix>-*`` (tests' cleanup; named one by one, never by wildcard)."""
    # Only ``<prefix>-<known name>-v<N>``: the wildcard alone would also match a longer prefix
    # such as ``<prefix>-other``.
    owned = re.compile(rf"^{re.escape(prefix)}-({'|'.join(s.name for s in INDICES)})-v\d+$")
    names = sorted(es.indices.get(index=f"{prefix}-*", expand_wildcards="all").body.keys())
    names = [n for n in names if owned.match(n)]
    if names:
        es.indices.delete(index=",".join(names))
    return names
