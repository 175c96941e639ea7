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


def _incremental(harvester: Harvester, name: str) -> dict:
    document = harvester.run(name, mode="incremental")
    assert document["status"] == "success", document
    return document


def test_steady_answers_still_see_what_changed_in_the_index(es, indices, settings, run_simulator):
    """Answers identical to the last ones are not decoded again, but what changed on our side still counts:
    a stale mark is cleared, an expired claim released, a slot deleted or altered in the index rewritten;
    and a steady run reports the same counts by reason as the decoded one."""
    name = "steady-guards"
    offers = town_offers(name, 6, start=7100)
    write_offers(es, settings, offers)
    sim = run_simulator(offers)
    harvester = Harvester(es=es, settings=settings, vendors=[vendor_config(name, sim.port)])
    harvester.run(name, mode="full")
    decoded = _incremental(harvester, name)           # decoded and mapped: learns the steady answers
    steady = _incremental(harvester, name)            # the same answers: not decoded
    keys = ("read", "unchanged", "upserted", "deleted", "stale_marked", "rejected", "reasons")
    assert {k: steady.get(k) for k in keys} == {k: decoded.get(k) for k in keys}
    assert steady["unchanged"] == steady["read"] > 20
    alias = alias_name(settings.index_prefix, "slots")
    ids = sorted(_documents(es, settings, name))
    stale_id, claimed_id, deleted_id, altered_id = ids[0], ids[1], ids[2], ids[3]
    before = _documents(es, settings, name)

    es.update(index=alias, id=stale_id, doc={"stale_since": "2026-01-01T00:00:00Z"}, refresh=True)
    es.update(index=alias, id=claimed_id, doc={"hidden": True, "claimed_by": "someone",
                                               "claim_expires_at": "2026-01-01T00:00:00Z"}, refresh=True)
    es.delete(index=alias, id=deleted_id, refresh=True)
    es.update(index=alias, id=altered_id, doc={"content_hash": "x.y", "motive": "altered"}, refresh=True)

    again = _incremental(harvester, name)
    assert again["read"] == steady["read"] and again["upserted"] == 3   # fresh again, re-created, rewritten
    after = _documents(es, settings, name)
    assert set(after) == set(before)
    assert after[stale_id][0]["stale_since"] is None
    assert after[claimed_id][0]["hidden"] is False and after[claimed_id][0]["claim_expires_at"] is None
    for slot_id in (deleted_id, altered_id):   # the same document again (but for when it was harvested)
        assert {**after[slot_id][0], "harvested_at": None} == {**before[slot_id][0], "harvested_at": None}
    # And steady again: nothing written.
    operations = _operations(es, settings)
    last = _incremental(harvester, name)
    assert last["unchanged"] == last["read"] and last["upserted"] == 0
    assert _operations(es, settings) == operations


def test_client_does_not_decode_pages_whose_entries_it_already_knows(run_simulator):
    import asyncio
    from datetime import timedelta

    from connectors.vendors.client import VendorClient
    from sas_core.clock import utcnow

    name = "steady-client"
    offers = town_offers(name, 30, start=7200)
    sim = run_simulator(offers)
    vendor = vendor_config(name, sim.port, page_size=200)
    ids = [offer["national_id"] for offer in offers[:25]]
    start = utcnow()

    async def search(known: set[bytes] | None):
        async with VendorClient(vendor, known_pages=known) as client:
            return await client.search("ps", ids=ids, start=start, end=start + timedelta(days=2))

    # A full sweep gives no known pages: nothing is hashed, every page decoded.
    full = asyncio.run(search(None))
    assert len(full.pages) > 1 and set(full.digests) == {None} and not any(full.unread)
    # An incremental run with nothing steady yet: every page decoded, each with its digest.
    first = asyncio.run(search(set()))
    assert len(first.pages) > 1 and None not in first.digests and not any(first.unread)
    again = asyncio.run(search(set(first.digests)))
    # Every page new (its Bundle id, its lastUpdated), the same entries: none decoded again.
    assert again.digests == first.digests and all(again.unread)
    assert all("entry" not in page for page in again.pages)
    assert [page["total"] for page in again.pages] == [page["total"] for page in first.pages]
    assert [page["id"] for page in again.pages] != [page["id"] for page in first.pages]
    import orjson

    assert [orjson.loads(body)["entry"] for body in again.bodies] == [page["entry"] for page in first.pages]
