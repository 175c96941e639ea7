"""Backups against the real node: index data, snapshot, delete the indices, restore, compare."""

from __future__ import annotations

import uuid

from elasticsearch import helpers

from indexer import lifecycle, snapshots
from mappings.registry import alias_name
from sas_core import local_es
from tests.guard import GuardedElasticsearch


def test_snapshot_restore_brings_back_deleted_indices(settings, es_node):
    prefix = f"{settings.index_prefix}-snap"
    es = GuardedElasticsearch(settings.es_url, allowed_prefix=prefix, request_timeout=120)
    repo_dir = local_es._paths(settings)["repo"]  # the node's path.repo
    repository = f"{prefix}-repo"
    location = str(repo_dir / f"{prefix}-{uuid.uuid4().hex[:6]}")
    try:
        lifecycle.setup_indices(es, prefix=prefix)
        locks = alias_name(prefix, "locks")
        docs = [{"id": f"l{i}", "holder": f"h{i % 7}", "acquired_at": "2026-11-01T10:00:00Z",
                 "expires_at": "2026-11-01T10:01:00Z"} for i in range(500)]
        helpers.bulk(es, ({"_index": locks, "_id": d["id"], "_source": d} for d in docs), refresh=True)
        before = {h["_id"]: h["_source"] for h in helpers.scan(es, index=locks)}

        snapshots.ensure_repository(es, repository=repository, location=location)
        made = snapshots.create_snapshot(es, prefix=prefix, repository=repository, snapshot="s1")
        assert made.state == "SUCCESS" and made.shards_failed == 0
        assert f"{prefix}-locks-v1" in made.indices
        assert any(s["snapshot"] == "s1" for s in snapshots.list_snapshots(es, repository=repository))

        deleted = lifecycle.drop_prefix(es, prefix=prefix)
        assert f"{prefix}-locks-v1" in deleted
        assert not es.indices.exists_alias(name=locks)

        restored = snapshots.restore_snapshot(es, prefix=prefix, repository=repository, snapshot="s1")
        assert f"{prefix}-locks-v1" in restored.indices
        es.cluster.health(index=f"{prefix}-locks-v1", wait_for_status="yellow", timeout="30s")
        after = {h["_id"]: h["_source"] for h in helpers.scan(es, index=locks)}
        assert after == before
        assert lifecycle.indices_behind(es, locks) == [f"{prefix}-locks-v1"]

        # restoring over live indices is refused rather than overwriting them
        try:
            snapshots.restore_snapshot(es, prefix=prefix, repository=repository, snapshot="s1")
            raise AssertionError("restore over existing indices should be refused")
        except RuntimeError as exc:
            assert "still exist" in str(exc)
    finally:
        lifecycle.drop_prefix(es, prefix=prefix)
        try:
            es.snapshot.delete(repository=repository, snapshot="s1")
            es.snapshot.delete_repository(name=repository)
        except Exception:  # noqa: BLE001 - cleanup only
            pass
