"""Backups: snapshots of the platform's indices into a file-system repository (``path.repo``)."""

from __future__ import annotations

from dataclasses import dataclass

from elasticsearch import Elasticsearch, NotFoundError

from indexer.lifecycle import indices_behind
from mappings.registry import INDICES
from sas_core.clock import utcnow


@dataclass(frozen=True)
class SnapshotResult:
    repository: str
    snapshot: str
    indices: list[str]
    state: str
    shards_failed: int = 0


def ensure_repository(es: Elasticsearch, *, repository: str, location: str) -> None:
    """Register (idempotently) a shared-file-system repository at ``location`` (inside ``path.repo``)."""
    es.snapshot.create_repository(name=repository, repository={"type": "fs", "settings": {"location": location}})


def platform_indices(es: Elasticsearch, *, prefix: str) -> list[str]:
    """The concrete indices currently behind the platform's aliases."""
    found: list[str] = []
    for spec in INDICES:
        found.extend(indices_behind(es, spec.alias(prefix)))
    return found


def create_snapshot(es: Elasticsearch, *, prefix: str, repository: str, snapshot: str | None = None) -> SnapshotResult:
    """Snapshot every index behind the platform's aliases (with their aliases), waiting for completion."""
    name = snapshot or f"{prefix}-{utcnow():%Y%m%d-%H%M%S}"
    indices = platform_indices(es, prefix=prefix)
    response = es.snapshot.create(
        repository=repository, snapshot=name, wait_for_completion=True,
        indices=",".join(indices), include_global_state=False,
    ).body
    info = response["snapshot"]
    return SnapshotResult(repository, name, sorted(info["indices"]), info["state"], info["shards"]["failed"])


def list_snapshots(es: Elasticsearch, *, repository: str) -> list[dict]:
    """Snapshots of ``repository``, oldest first."""
    try:
        return es.snapshot.get(repository=repository, snapshot="_all").body["snapshots"]
    except NotFoundError:
        return []


def restore_snapshot(es: Elasticsearch, *, prefix: str, repository: str, snapshot: str) -> SnapshotResult:
    """Restore the platform's indices (and aliases) of ``snapshot``.

    A restore never overwrites live data: if an index of the snapshot still exists, nothing is restored
    and the error names the indices to delete first.
    """
    info = es.snapshot.get(repository=repository, snapshot=snapshot).body["snapshots"][0]
    wanted = [i for i in info["indices"] if i.startswith(f"{prefix}-")]
    existing = [i for i in wanted if es.indices.exists(index=i)]
    if existing:
        raise RuntimeError(f"indices still exist, delete them before restoring: {', '.join(existing)}")
    response = es.snapshot.restore(
        repository=repository, snapshot=snapshot, indices=",".join(wanted), include_aliases=True,
        include_global_state=False, wait_for_completion=True,
    ).body
    restored = response["snapshot"]
    return SnapshotResult(repository, snapshot, sorted(restored["indices"]), "SUCCESS",
                          restored["shards"]["failed"])
