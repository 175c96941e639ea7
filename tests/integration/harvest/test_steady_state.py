"""Steady state: a re-sweep where nothing changed writes nothing (no index, no noop update: every slot
document keeps its bytes and its sequence number), while a slot whose document changed is rewritten and a
slot the vendor no longer lists is deleted, in the same run."""

from __future__ import annotations

import httpx

from indexer.harvest import Harvester
from mappings.registry import alias_name
from tests.integration.harvest.conftest import town_offers, write_offers
from tests.integration.harvest.test_harvest_semantics import vendor_config


def _documents(es, settings, vendor: str) -> dict[str, tuple[dict, int]]:
    """slot id → (``_source``, ``_seq_no``) of every slot of ``vendor``."""
    alias = alias_name(settings.index_prefix, "slots")
    es.indices.refresh(index=alias)
    hits = es.search(index=alias, size=5000, seq_no_primary_term=True, query={"term": {"vendor": vendor}},
                     sort=["_doc"])["hits"]["hits"]
    return {hit["_id"]: (hit["_source"], hit["_seq_no"]) for hit in hits}


def _operations(es, settings) -> dict[str, int]:
    """Write operations the slots index has taken so far (primaries): indexed, deleted, noop updates."""
    alias = alias_name(settings.index_prefix, "slots")
    indexing = es.indices.stats(index=alias, metric="indexing")["_all"]["primaries"]["indexing"]
    return {"index": indexing["index_total"], "delete": indexing["delete_total"],
            "noop": indexing["noop_update_total"]}


def test_unchanged_resweep_writes_nothing_changed_and_gone_slots_are_written(es, indices, settings, run_simulator):
    name = "steady-agenda"
    offers = town_offers(name, 12, start=7000)
    write_offers(es, settings, offers)
    sim = run_simulator(offers)
    harvester = Harvester(es=es, settings=settings, vendors=[vendor_config(name, sim.port)])

    first = harvester.run(name, mode="full")
    assert first["status"] == "success" and first["upserted"] > 100
    before = _documents(es, settings, name)
    assert len(before) == first["upserted"]

    # Nothing changed, in either mode: every slot counted unchanged, no operation reaches the index.
    for mode in ("full", "incremental"):
        operations = _operations(es, settings)
        again = harvester.run(name, mode=mode)
        assert again["status"] == "success", again
        assert again["upserted"] == again["deleted"] == again["stale_marked"] == 0, again
        assert again["unchanged"] == again["read"] > 0
        assert _operations(es, settings) == operations, mode
        assert _documents(es, settings, name) == before, mode

    # One place moves in the directory (its slots' documents change), one slot is taken at the vendor.
    moved = offers[1]
    moved["location"] = {"lat": 44.5, "lon": 0.7}
    write_offers(es, settings, [moved])
    rewritten = {slot_id for slot_id, (source, _) in before.items() if source["offer_id"] == moved["id"]}
    taken = next(slot_id for slot_id in sorted(before) if slot_id not in rewritten)
    answer = httpx.post(f"http://127.0.0.1:{sim.port}/_admin/vendors/{name}/take",
                        json={"slot_ids": [taken.split(":", 1)[1]]}, timeout=10).json()
    assert answer["taken"] == [taken.split(":", 1)[1]]

    operations = _operations(es, settings)
    third = harvester.run(name, mode="full")
    assert third["status"] == "success", third
    assert third["deleted"] == 1 and third["upserted"] == len(rewritten) > 0
    assert third["unchanged"] == len(before) - len(rewritten) - 1
    after = _documents(es, settings, name)
    assert set(after) == set(before) - {taken}
    for slot_id, (source, seq_no) in after.items():
        if slot_id in rewritten:
            assert source["location"] == {"lat": 44.5, "lon": 0.7} and seq_no > before[slot_id][1]
        else:
            assert (source, seq_no) == before[slot_id], slot_id
    written = {op: count - operations[op] for op, count in _operations(es, settings).items()}
    assert written == {"index": len(rewritten), "delete": 1, "noop": 0}
