"""The harvester's copy of what it indexed (``indexer.harvest.indexed_book``): an incremental run reads from
Elasticsearch only what entered its window since the vendor's last run, sees exactly what a scan of the
window would, and reads the whole window again whenever someone else may have written the vendor's slots."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx

from indexer.harvest import Harvester
from indexer.harvest.existing_slots import scan_existing
from indexer.harvest.window import Window
from mappings.registry import alias_name
from sas_core.clock import iso, utcnow
from tests.integration.harvest.conftest import town_offers, write_offers
from tests.integration.harvest.test_harvest_semantics import vendor_config


def _count(es, settings, vendor: str, low, high) -> int:
    """The vendor's indexed slots starting in [low, high]."""
    alias = alias_name(settings.index_prefix, "slots")
    es.indices.refresh(index=alias)
    return es.count(index=alias, query={"bool": {"filter": [
        {"term": {"vendor": vendor}}, {"range": {"start": {"gte": iso(low), "lte": iso(high)}}}]}})["count"]


def _run(harvester: Harvester, name: str, now) -> dict:
    document = harvester.run(name, mode="incremental", now=now)
    assert document["status"] == "success", document
    return document


def _take(port: int, name: str, slot_ids: list[str]) -> None:
    answer = httpx.post(f"http://127.0.0.1:{port}/_admin/vendors/{name}/take",
                        json={"slot_ids": [slot_id.split(":", 1)[1] for slot_id in slot_ids]}, timeout=10).json()
    assert len(answer["taken"]) == len(slot_ids)


def _window_ids(es, settings, vendor: str, low, high) -> list[str]:
    alias = alias_name(settings.index_prefix, "slots")
    es.indices.refresh(index=alias)
    hits = es.search(index=alias, size=5000, sort=["start"], source=False, query={"bool": {"filter": [
        {"term": {"vendor": vendor}}, {"range": {"start": {"gte": iso(low), "lte": iso(high)}}}]}})["hits"]["hits"]
    return [hit["_id"] for hit in hits]


def _first_start_after(es, settings, vendor: str, instant):
    alias = alias_name(settings.index_prefix, "slots")
    hits = es.search(index=alias, size=1, sort=["start"], query={"bool": {"filter": [
        {"term": {"vendor": vendor}}, {"range": {"start": {"gt": iso(instant)}}}]}})["hits"]["hits"]
    return datetime.fromisoformat(hits[0]["_source"]["start"]).replace(microsecond=0)


def _vendor_harvested(es, settings, run_simulator, name: str, practitioners: int, start: int, **changes):
    """(harvester, vendor, simulator) of a simulated vendor of ``practitioners`` in Agen, swept once at
    the returned instant."""
    offers = town_offers(name, practitioners, start=start)
    write_offers(es, settings, offers)
    sim = run_simulator(offers)
    vendor = vendor_config(name, sim.port)
    harvester = Harvester(es=es, settings=settings.model_copy(update=changes), vendors=[vendor])
    t0 = utcnow().replace(microsecond=0)
    assert harvester.run(name, mode="full", now=t0)["status"] == "success"
    return harvester, vendor, sim, t0


def test_runs_read_only_what_entered_their_window_and_see_what_a_scan_sees(es, indices, settings, run_simulator):
    name = "copy-agenda"
    harvester, vendor, sim, t0 = _vendor_harvested(es, settings, run_simulator, name, 8, 7300)

    first = _run(harvester, name, t0)       # no copy of the window yet: all of it read
    in_window = _count(es, settings, name, t0, t0 + timedelta(hours=48))
    assert first["indexed_read"] == first["unchanged"] == in_window > 50

    steady = _run(harvester, name, t0)      # the same window: nothing read
    assert steady["indexed_read"] == 0 and steady["unchanged"] == in_window

    # Two slots taken at the vendor: deleted from the copy's view as from a scan's.
    taken = _window_ids(es, settings, name, t0 + timedelta(hours=30), t0 + timedelta(hours=48))[:2]
    _take(sim.port, name, taken)
    changed = _run(harvester, name, t0)
    assert changed["indexed_read"] == 0 and changed["deleted"] == 2 and changed["unchanged"] == in_window - 2
    assert _run(harvester, name, t0)["indexed_read"] == 0     # the deletions are in the copy

    # Later the window has moved: what entered it is read, what left it is out of the run's view (never
    # deleted by it), the slots taken stay gone. (Late enough for opening hours to have entered it, whatever
    # the day and hour of the test.)
    later = _first_start_after(es, settings, name, t0 + timedelta(hours=48)) - timedelta(hours=47)
    entered = _count(es, settings, name, t0 + timedelta(hours=48, seconds=1), later + timedelta(hours=48))
    over = es.count(index=alias_name(settings.index_prefix, "slots"), query={"bool": {"filter": [
        {"term": {"vendor": name}}, {"range": {"end": {"lte": iso(later)}}}]}})["count"]
    moved = _run(harvester, name, later)
    assert entered > 0 and moved["indexed_read"] == entered
    # Nothing of the window deleted, nothing written: only the slots already over by then (expired).
    assert moved["deleted"] == over and moved["upserted"] == 0
    assert moved["unchanged"] == _count(es, settings, name, later, later + timedelta(hours=48))

    # The copy's view of the window is a scan's: same ids, roster keys, content hashes, staleness, starts.
    window = Window.for_mode(vendor, "incremental", now=later)
    view, _, read = harvester.indexed.existing(vendor=vendor, window=window, now=later, run_id="check")
    scan = scan_existing(es, slots_alias=alias_name(settings.index_prefix, "slots"), vendor=vendor, window=window,
                         now=later)
    assert read == 0 and view.by_id == scan.by_id and not set(taken) & set(view.by_id)
    assert {key: ids for key, ids in view.by_key.items()} == {key: ids for key, ids in scan.by_key.items()}


def test_whoever_else_writes_the_vendors_slots_makes_the_next_run_read_its_window(es, indices, settings,
                                                                                   run_simulator):
    name = "copy-outside"
    harvester, vendor, _, t0 = _vendor_harvested(es, settings, run_simulator, name, 6, 7400)
    in_window = _run(harvester, name, t0)["indexed_read"]
    assert in_window > 20 and _run(harvester, name, t0)["indexed_read"] == 0

    # A slot deleted outside the harvest (a directory load removing the slots of a gone offer, by hand):
    # the vendor's count changed, the window is read again and the slot written back.
    alias = alias_name(settings.index_prefix, "slots")
    es.delete(index=alias, id=_window_ids(es, settings, name, t0, t0 + timedelta(hours=48))[0], refresh=True)
    again = _run(harvester, name, t0)
    assert again["indexed_read"] == in_window - 1 and again["upserted"] == 1
    assert _run(harvester, name, t0)["indexed_read"] == 0

    # Another process harvested the vendor meanwhile (it took the vendor over for a while): its run
    # record says so, even a run that wrote nothing.
    other = Harvester(es=es, settings=settings, vendors=[vendor])
    assert _run(other, name, t0)["indexed_read"] == in_window
    assert _run(harvester, name, t0)["indexed_read"] == in_window
    assert _run(harvester, name, t0)["indexed_read"] == 0

    # A full sweep keeps no journal (millions of writes nationally): the next incremental run reads the
    # window it overlapped again.
    assert harvester.run(name, mode="full", now=t0)["status"] == "success"
    assert _run(harvester, name, t0)["indexed_read"] == in_window
    assert _run(harvester, name, t0)["indexed_read"] == 0


def test_without_the_copy_or_past_its_age_every_run_reads_its_window(es, indices, settings, run_simulator):
    for n, changes in enumerate(({"harvest_indexed_copy": False}, {"harvest_indexed_copy_max_age_s": 0})):
        name = f"copy-off-{n}"
        harvester, _, _, t0 = _vendor_harvested(es, settings, run_simulator, name, 4, 7500 + 10 * n, **changes)
        reads = [_run(harvester, name, t0)["indexed_read"] for _ in range(3)]
        assert reads[0] > 10 and reads == [reads[0]] * 3, changes
