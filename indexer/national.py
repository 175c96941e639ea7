"""National-scale index settings (``mappings/settings/national.json``): shards and replicas for the
three-node cluster, applied at creation by ``sas setup --national``.

Shard counts are fixed when an index is created; replica counts can change at any time, so
``apply_replicas`` brings existing indices to the national replica counts and reports the shard
counts that differ (those need ``sas migrate`` into a new index version).

Bulk loads do not need a setting here: the directory load turns ``refresh_interval`` to ``-1`` for its
duration and restores the mapping's value afterwards (``indexer.directory``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

from elasticsearch import Elasticsearch

from mappings.registry import INDICES

#: Only these settings may be overridden: the rest belongs to each mapping.
ALLOWED = {"number_of_shards", "number_of_replicas", "refresh_interval"}


@cache
def national_overrides() -> dict[str, dict]:
    """``logical index → settings`` of the national profile (validated against the registry)."""
    raw = json.loads(resources.files("mappings").joinpath("settings", "national.json").read_text(encoding="utf-8"))
    overrides = raw["indices"]
    known = {spec.name for spec in INDICES}
    unknown = set(overrides) - known
    if unknown:
        raise ValueError(f"national.json names unknown indices: {sorted(unknown)}")
    for name, values in overrides.items():
        if set(values) - ALLOWED:
            raise ValueError(f"national.json: {name} overrides {sorted(set(values) - ALLOWED)}")
    return overrides


@dataclass(frozen=True)
class ReplicaChange:
    index: str
    replicas_before: int
    replicas_after: int
    shards: int
    shards_wanted: int


def apply_replicas(es: Elasticsearch, *, prefix: str) -> list[ReplicaChange]:
    """Set the national replica count on the indices behind ``prefix``'s aliases (dynamic setting)."""
    changes: list[ReplicaChange] = []
    for spec in INDICES:
        wanted = national_overrides().get(spec.name)
        alias = spec.alias(prefix)
        if not wanted or not es.indices.exists_alias(name=alias):
            continue
        current = es.indices.get_settings(index=alias, name="index.number_of_*").body
        for index, body in current.items():
            settings = body["settings"]["index"]
            before, shards = int(settings["number_of_replicas"]), int(settings["number_of_shards"])
            after = int(wanted.get("number_of_replicas", before))
            if after != before:
                es.indices.put_settings(index=index, settings={"index": {"number_of_replicas": after}})
            changes.append(ReplicaChange(index, before, after, shards, int(wanted.get("number_of_shards", shards))))
    return changes
