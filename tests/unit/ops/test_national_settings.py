"""The national index settings name real indices, override only shards / replicas / refresh, and give
the slots index several shards and every index at least one replica (one node may fail)."""

from __future__ import annotations

from indexer.lifecycle import _create_index
from indexer.national import ALLOWED, national_overrides
from mappings.registry import INDICES, spec


def test_every_index_has_national_settings_with_a_replica():
    overrides = national_overrides()
    assert set(overrides) == {s.name for s in INDICES}
    for name, values in overrides.items():
        assert set(values) <= ALLOWED
        assert values["number_of_replicas"] >= 1, name
        assert values["number_of_shards"] >= 1, name
    assert overrides["slots"]["number_of_shards"] == 3        # one primary per node of the cluster profile
    # A replica count above the node count (3) would leave copies unassigned for ever.
    assert all(v["number_of_replicas"] <= 2 for v in overrides.values())


def test_overrides_replace_only_the_settings_they_name():
    class Recorder:
        class indices:  # noqa: N801 - mimics the client's namespace for a pure check of the request body
            body: dict = {}

            @classmethod
            def create(cls, *, index, **body):
                cls.body = body

    slots = spec("slots")
    _create_index(Recorder, index="x-slots-v1", index_spec=slots, overrides=national_overrides()["slots"])
    sent = Recorder.indices.body
    assert sent["mappings"] == slots.body["mappings"]
    assert sent["settings"]["number_of_shards"] == 3 and sent["settings"]["number_of_replicas"] == 1
    for key, value in slots.body["settings"].items():
        if key not in ALLOWED:
            assert sent["settings"][key] == value
