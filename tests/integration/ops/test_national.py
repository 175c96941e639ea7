"""``sas setup --national`` on the real node: indices are created with the national shard counts, and
replica counts of existing indices are brought to the national ones (shard differences reported)."""

from __future__ import annotations

import uuid

from indexer.lifecycle import drop_prefix, setup_indices
from indexer.national import apply_replicas, national_overrides
from mappings.registry import alias_name


def test_national_shards_at_creation_and_replicas_applied_later(es, test_prefix):
    prefix = f"{test_prefix}-nat{uuid.uuid4().hex[:4]}"
    # Replicas 0 at creation: this single node cannot host a replica (the cluster would turn yellow).
    overrides = {name: {**values, "number_of_replicas": 0} for name, values in national_overrides().items()}
    try:
        setup_indices(es, prefix=prefix, overrides=overrides)
        settings = es.indices.get_settings(index=alias_name(prefix, "slots"), name="index.number_of_*").body
        (index_settings,) = [body["settings"]["index"] for body in settings.values()]
        assert index_settings["number_of_shards"] == "3" and index_settings["number_of_replicas"] == "0"
        mapping_settings = es.indices.get_settings(index=alias_name(prefix, "offers"),
                                                   name="index.refresh_interval").body
        assert next(iter(mapping_settings.values()))["settings"]["index"]["refresh_interval"] == "1s"

        changes = {c.index.split("-v")[0].removeprefix(f"{prefix}-"): c for c in apply_replicas(es, prefix=prefix)}
        assert changes["slots"].replicas_before == 0 and changes["slots"].replicas_after == 1
        assert changes["offers"].replicas_after == 2
        assert changes["slots"].shards == changes["slots"].shards_wanted == 3
        after = es.indices.get_settings(index=alias_name(prefix, "offers"), name="index.number_of_replicas").body
        assert next(iter(after.values()))["settings"]["index"]["number_of_replicas"] == "2"
    finally:
        drop_prefix(es, prefix=prefix)
