"""Index lifecycle against the real Elasticsearch: setup, idempotence, prefix isolation, migration."""

from __future__ import annotations

import copy
import json
import uuid

import pytest

from indexer import lifecycle
from mappings import registry
from mappings.registry import INDICES
from tests.guard import ForeignIndexWrite, GuardedElasticsearch


def test_setup_creates_versioned_indices_behind_aliases(es, indices, settings):
    for spec in INDICES:
        assert lifecycle.indices_behind(es, spec.alias(settings.index_prefix)) == [spec.index(settings.index_prefix)]
        mapping = es.indices.get_mapping(index=spec.alias(settings.index_prefix)).body
        (body,) = mapping.values()
        assert body["mappings"]["dynamic"] == "strict"


def test_setup_twice_changes_nothing(es, indices, settings):
    before = es.indices.get(index=f"{settings.index_prefix}-*").body
    states = lifecycle.setup_indices(es, prefix=settings.index_prefix)
    after = es.indices.get(index=f"{settings.index_prefix}-*").body
    assert {s.action for s in states} == {"unchanged"}
    assert before.keys() == after.keys()
    for name in before:
        assert before[name]["settings"]["index"]["uuid"] == after[name]["settings"]["index"]["uuid"]


def test_other_prefix_touches_only_its_indices(es, indices, settings, es_node):
    other = f"{settings.index_prefix}-x"
    guarded = GuardedElasticsearch(settings.es_url, allowed_prefix=other)
    try:
        before = set(es.indices.get(index=f"{settings.index_prefix}-*").body)
        lifecycle.setup_indices(guarded, prefix=other)
        after = set(es.indices.get(index=f"{settings.index_prefix}-*").body)
        created = after - before
        assert created and all(name.startswith(f"{other}-") for name in created)
        assert before <= after
    finally:
        assert lifecycle.drop_prefix(guarded, prefix=other)
    assert set(es.indices.get(index=f"{settings.index_prefix}-*").body) == before


def test_guard_refuses_foreign_writes(es):
    with pytest.raises(ForeignIndexWrite):
        es.index(index="someone-elses-index", document={"a": 1})
    with pytest.raises(ForeignIndexWrite):
        es.bulk(operations=[{"index": {"_index": "someone-elses-index"}}, {"a": 1}])


def test_strict_mapping_refuses_unknown_field(es, indices, settings):
    from elasticsearch import BadRequestError

    with pytest.raises(BadRequestError):
        es.index(index=registry.alias_name(settings.index_prefix, "locks"),
                 document={"id": "x", "holder": "h", "acquired_at": "2026-01-01T00:00:00Z",
                           "expires_at": "2026-01-01T00:01:00Z", "unknown": 1})


def test_migrate_copies_documents_and_swaps_alias_atomically(es, settings, es_node, monkeypatch):
    prefix = f"{settings.index_prefix}-mig{uuid.uuid4().hex[:4]}"
    guarded = GuardedElasticsearch(settings.es_url, allowed_prefix=prefix)
    try:
        lifecycle.setup_indices(guarded, prefix=prefix)
        alias = registry.alias_name(prefix, "locks")
        docs = [{"id": f"lock-{i}", "holder": "h", "acquired_at": "2026-01-01T00:00:00Z",
                 "expires_at": "2026-01-01T00:01:00Z"} for i in range(2500)]
        from elasticsearch import helpers

        helpers.bulk(guarded, ({"_index": alias, "_id": d["id"], "_source": d} for d in docs), refresh=True)

        # A new mapping version of "locks": one more field.
        locks = registry.spec("locks")
        new_definition = copy.deepcopy(locks.definition)
        new_definition["version"] = locks.version + 1
        new_definition["mappings"]["properties"]["note"] = {"type": "keyword"}
        monkeypatch.setattr(registry, "_load_definition", _patched_loader(locks.name, new_definition))

        state = lifecycle.migrate_index(guarded, prefix=prefix, name="locks")
        assert state.action == "migrated"
        assert state.documents == 2500
        assert state.previous_index == f"{prefix}-locks-v1"
        assert lifecycle.indices_behind(guarded, alias) == [f"{prefix}-locks-v2"]
        assert guarded.count(index=alias)["count"] == 2500
        # the previous index is kept for rollback
        assert guarded.indices.exists(index=f"{prefix}-locks-v1")
        # new field usable through the alias
        guarded.index(index=alias, id="new", document={**docs[0], "id": "new", "note": "v2"}, refresh=True)
        # migrating again is a no-op
        assert lifecycle.migrate_index(guarded, prefix=prefix, name="locks").action == "unchanged"
        # rollback points the alias back to v1
        rolled = lifecycle.rollback_index(guarded, prefix=prefix, name="locks")
        assert rolled.index == f"{prefix}-locks-v1"
        assert lifecycle.indices_behind(guarded, alias) == [f"{prefix}-locks-v1"]
    finally:
        lifecycle.drop_prefix(guarded, prefix=prefix)


def _patched_loader(name: str, definition: dict):
    original = registry._load_definition

    def loader(requested: str) -> dict:
        return json.loads(json.dumps(definition)) if requested == name else original(requested)

    return loader
