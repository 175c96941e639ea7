"""Harvest semantics against the simulator: an answer is the whole truth of its batch and window; a
failure keeps the last known slots (stale, hidden once too old, back on recovery); retries, circuit
breaker and mutual TLS."""

from __future__ import annotations

from datetime import timedelta

import httpx

from connectors.vendors.config import VendorConfig
from indexer.harvest import Harvester, utcnow
from mappings.registry import alias_name
from mappings.slots import visible_slot_filter
from simulator.server import ServerTls
from tests.integration.harvest.conftest import town_offers, write_offers
from tests.tls_files import vendor_tls_files


def vendor_config(name: str, port: int, **overrides) -> VendorConfig:
    values = dict(name=name, base_url=f"http://127.0.0.1:{port}/{name}/fhir", use_cases=["ps", "cpts"],
                  backoff_initial_s=0.01, backoff_max_s=0.05, breaker_reset_s=0.2, timeout_s=3)
    values.update(overrides)
    return VendorConfig(**values)


def vendor_slots(es, settings, vendor: str) -> dict[str, dict]:
    alias = alias_name(settings.index_prefix, "slots")
    es.indices.refresh(index=alias)
    hits = es.search(index=alias, size=5000, query={"term": {"vendor": vendor}})["hits"]["hits"]
    return {h["_id"]: h["_source"] for h in hits}


def visible_count(es, settings, vendor: str, *, now) -> int:
    alias = alias_name(settings.index_prefix, "slots")
    es.indices.refresh(index=alias)
    query = {"bool": {"filter": [{"term": {"vendor": vendor}},
                                 *visible_slot_filter(now=now, stale_after_s=settings.stale_after_s)]}}
    return es.count(index=alias, query=query)["count"]


def set_faults(sim, vendor: str, **faults) -> None:
    httpx.put(f"http://127.0.0.1:{sim.port}/_admin/vendors/{vendor}/faults", json=faults).raise_for_status()


def test_taken_slot_disappears_and_failure_keeps_slots_until_recovery(es, indices, settings, run_simulator):
    name = "sem-agenda"
    offers = town_offers(name, 30, start=1000)
    write_offers(es, settings, offers)
    sim = run_simulator(offers)
    harvester = Harvester(es=es, settings=settings, vendors=[vendor_config(name, sim.port)])

    first = harvester.run(name, mode="incremental")
    assert first["status"] == "success" and first["requests"] == 2      # 30 ids → 25 + 5
    slots = vendor_slots(es, settings, name)
    assert len(slots) == first["read"] == first["upserted"] > 50
    assert {s["offer_id"] for s in slots.values()} <= {o["id"] for o in offers}
    assert any("CPTS" in s["types"] for s in slots.values())
    assert all(s["start"] >= first["started_at"][:19] for s in slots.values())

    # The platform hides a slot it booked itself: a harvest must not undo that.
    hidden_id = sorted(slots)[0]
    es.update(index=alias_name(settings.index_prefix, "slots"), id=hidden_id, doc={"hidden": True})

    # Nothing changed at the vendor: nothing is written.
    second = harvester.run(name, mode="incremental")
    assert second["unchanged"] == len(slots) and second["upserted"] == 0 and second["deleted"] == 0

    # Five slots are taken at the vendor: gone after the next harvest, the others untouched.
    taken = [sid.split(":", 1)[1] for sid in sorted(slots)[1:6]]
    answer = httpx.post(f"http://127.0.0.1:{sim.port}/_admin/vendors/{name}/take", json={"slot_ids": taken}).json()
    assert answer["taken"] == taken
    third = harvester.run(name, mode="incremental")
    assert third["deleted"] == 5 and third["unchanged"] == len(slots) - 5
    after = vendor_slots(es, settings, name)
    assert set(slots) - set(after) == {f"{name}:{t}" for t in taken}
    assert after[hidden_id]["hidden"] is True

    # The vendor goes down: slots are kept, marked stale once, hidden only when stale for too long.
    set_faults(sim, name, down=True)
    failed = harvester.run(name, mode="incremental")
    assert failed["status"] == "failed" and failed["deleted"] == 0
    assert failed["stale_marked"] == len(after)
    assert any("503" in message for message in failed["errors"])
    during = vendor_slots(es, settings, name)
    assert set(during) == set(after)
    assert all(s["stale_since"] for s in during.values())
    now = utcnow()
    assert visible_count(es, settings, name, now=now) == len(after) - 1     # minus the hidden one
    later = now + timedelta(seconds=settings.stale_after_s + 60)
    assert visible_count(es, settings, name, now=later) == 0
    again = harvester.run(name, mode="incremental")
    assert again["stale_marked"] == 0                                      # stale_since is not moved
    stale_since = {s["stale_since"] for s in vendor_slots(es, settings, name).values()}
    assert len(stale_since) == 1

    # It recovers: the same slots come back, fresh.
    set_faults(sim, name)
    import time
    time.sleep(0.3)                                                        # breaker half-open
    recovered = harvester.run(name, mode="incremental")
    assert recovered["status"] == "success" and recovered["deleted"] == 0
    back = vendor_slots(es, settings, name)
    assert set(back) == set(after) and all(s["stale_since"] is None for s in back.values())
    assert visible_count(es, settings, name, now=utcnow()) == len(after) - 1


def test_full_sweep_covers_seven_days_and_incremental_leaves_later_slots(es, indices, settings, run_simulator):
    name = "sem-windows"
    offers = town_offers(name, 10, start=2000)
    write_offers(es, settings, offers)
    sim = run_simulator(offers)
    harvester = Harvester(es=es, settings=settings, vendors=[vendor_config(name, sim.port)])
    full = harvester.run(name, mode="full")
    slots = vendor_slots(es, settings, name)
    assert full["status"] == "success" and len(slots) == full["upserted"]
    limit = (utcnow() + timedelta(hours=48)).isoformat()
    later = {sid for sid, s in slots.items() if s["start"] > limit}
    assert later, "a 7-day agenda has slots beyond 48 h"
    # The vendor stops answering for late slots only through the incremental window: those stay.
    incremental = harvester.run(name, mode="incremental")
    assert incremental["deleted"] == 0
    assert later <= set(vendor_slots(es, settings, name))


def test_a_sweep_finishes_its_first_batches_before_starting_the_last(es, indices, settings, run_simulator):
    """A search of a 7-day window is several requests (≤ 24 h each here). The client bounds requests in
    flight, not searches: when every batch was started at once, each search's second request queued behind
    the first request of every other batch, so nothing was written before the whole roster had answered
    once (and every partial answer sat in memory). The first batches now end before the last one starts."""
    name = "sem-order"
    offers = town_offers(name, 12, start=2500)
    write_offers(es, settings, offers)
    sim = run_simulator(offers)
    vendor = vendor_config(name, sim.port, use_cases=["ps"], batch_size=2, concurrency=1, max_window_h=24)
    run = Harvester(es=es, settings=settings, vendors=[vendor]).run(name, mode="full")
    assert run["status"] == "success", run["errors"]
    log = httpx.get(f"http://127.0.0.1:{sim.port}/_admin/vendors/{name}/requests").json()
    batch_of = [next(i for i, o in enumerate(offers) if o["national_id"] in r["query"]) // 2 for r in log]
    assert len(log) >= 6 * 7 and sorted(set(batch_of)) == list(range(6)), (len(log), batch_of)
    last_of_first = max(i for i, b in enumerate(batch_of) if b == 0)
    first_of_last = min(i for i, b in enumerate(batch_of) if b == 5)
    assert last_of_first < first_of_last, batch_of


def test_retries_on_5xx_and_429_then_success(es, indices, settings, run_simulator):
    name = "sem-flaky"
    offers = town_offers(name, 60, start=3000)
    write_offers(es, settings, offers)
    sim = run_simulator(offers)
    set_faults(sim, name, error_rate=0.3, rate_limit_rate=0.2)
    harvester = Harvester(es=es, settings=settings, vendors=[vendor_config(name, sim.port, max_attempts=10,
                                                                           breaker_threshold=50)])
    run = harvester.run(name, mode="incremental")
    assert run["status"] == "success", run["errors"]
    assert run["requests"] > 3                         # 3 batches, some retried
    assert run["upserted"] == len(vendor_slots(es, settings, name)) > 0


def test_malformed_bundles_and_bad_resources(es, indices, settings, run_simulator):
    name = "sem-broken"
    offers = town_offers(name, 30, start=4000)
    write_offers(es, settings, offers)
    sim = run_simulator(offers)
    harvester = Harvester(es=es, settings=settings, vendors=[vendor_config(name, sim.port)])
    assert harvester.run(name, mode="incremental")["status"] == "success"
    before = vendor_slots(es, settings, name)
    # Truncated answers are not retried, never a truth: nothing deleted, batch slots stale.
    set_faults(sim, name, malformed_rate=1.0)
    run = harvester.run(name, mode="incremental")
    assert run["status"] == "failed" and run["deleted"] == 0 and run["requests"] == 2
    assert any("not JSON" in message for message in run["errors"])
    assert set(vendor_slots(es, settings, name)) == set(before)
    # Broken resources among good ones are skipped one by one and counted.
    set_faults(sim, name, bad_resource_rate=0.2)
    run = harvester.run(name, mode="incremental")
    assert run["status"] == "success" and run["deleted"] == 0
    reasons = {r["reason"]: r["count"] for r in run["rejected_by_reason"]}
    assert reasons.get("bad_slot_time", 0) == run["rejected"] > 0
    assert set(vendor_slots(es, settings, name)) == set(before)


def test_circuit_breaker_stops_calling_a_failing_vendor(es, indices, settings, run_simulator):
    name = "sem-breaker"
    offers = town_offers(name, 150, start=5000)                  # 6 batches
    write_offers(es, settings, offers)
    sim = run_simulator(offers)
    set_faults(sim, name, down=True)
    harvester = Harvester(es=es, settings=settings, vendors=[vendor_config(
        name, sim.port, max_attempts=2, breaker_threshold=2, breaker_reset_s=60, concurrency=1)])
    run = harvester.run(name, mode="incremental")
    assert run["status"] == "failed"
    reasons = {r["reason"]: r["count"] for r in run["rejected_by_reason"]}
    assert reasons["error:circuit_open"] == 4 and reasons["error:http_503"] == 2
    assert run["requests"] == 4                                  # 2 batches × 2 attempts, then fail fast


def test_mutual_tls(es, indices, settings, run_simulator, tmp_path):
    name = "sem-mtls"
    offers = town_offers(name, 5, start=6000)
    write_offers(es, settings, offers)
    paths = vendor_tls_files(tmp_path)
    sim = run_simulator(offers, https=ServerTls(paths["server_cert"], paths["server_key"], paths["ca"]))
    set_faults(sim, name, tls_required=True)
    https = f"https://127.0.0.1:{sim.https_port}/{name}/fhir"
    tls = {"cert": paths["client_cert"], "key": paths["client_key"], "ca": paths["ca"]}

    good = Harvester(es=es, settings=settings, vendors=[vendor_config(name, sim.port, base_url=https, tls=tls)])
    run = good.run(name, mode="incremental")
    assert run["status"] == "success" and run["upserted"] > 0

    no_cert = Harvester(es=es, settings=settings, vendors=[vendor_config(
        name, sim.port, base_url=https, tls={"ca": paths["ca"]}, max_attempts=1)])
    refused = no_cert.run(name, mode="incremental")
    assert refused["status"] == "failed" and refused["deleted"] == 0
    assert any(r["reason"] == "error:connection_error" for r in refused["rejected_by_reason"])

    plain = Harvester(es=es, settings=settings, vendors=[vendor_config(name, sim.port)])
    forbidden = plain.run(name, mode="incremental")
    assert forbidden["status"] == "failed" and any("mutual TLS required" in m for m in forbidden["errors"])
    assert forbidden["requests"] == 1                       # a 403 is not retried


def test_timeouts_are_retried_then_reported(es, indices, settings, run_simulator):
    name = "sem-timeout"
    offers = town_offers(name, 5, start=9000)
    write_offers(es, settings, offers)
    sim = run_simulator(offers)
    set_faults(sim, name, timeout_rate=1.0, timeout_s=3)
    harvester = Harvester(es=es, settings=settings, vendors=[vendor_config(name, sim.port, timeout_s=0.3,
                                                                           max_attempts=3)])
    run = harvester.run(name, mode="incremental")
    assert run["status"] == "failed" and run["requests"] == 3
    assert {r["reason"]: r["count"] for r in run["rejected_by_reason"]}["error:timeout"] == 1


def test_rate_limit_spreads_requests(es, indices, settings, run_simulator):
    name = "sem-ratelimit"
    offers = town_offers(name, 200, start=10000)                  # 8 batches
    write_offers(es, settings, offers)
    sim = run_simulator(offers)
    harvester = Harvester(es=es, settings=settings, vendors=[vendor_config(name, sim.port, rate_limit_per_s=4,
                                                                           concurrency=8, page_size=5000)])
    assert harvester.run(name, mode="incremental")["status"] == "success"
    times = sorted(r["at"] for r in httpx.get(f"http://127.0.0.1:{sim.port}/_admin/vendors/{name}/requests").json())
    assert len(times) == 8
    # Leaky bucket of 4 per second: a burst of 4, then one every 0.25 s.
    assert times[4] - times[0] >= 0.2
    assert times[-1] - times[0] >= 0.9


def test_incremental_skips_unchanged_sources_and_full_sweep_picks_up_directory_changes(es, indices, settings,
                                                                                        run_simulator):
    name = "sem-directory"
    offers = town_offers(name, 4, start=8000)
    write_offers(es, settings, offers)
    sim = run_simulator(offers)
    harvester = Harvester(es=es, settings=settings, vendors=[vendor_config(name, sim.port)])
    assert harvester.run(name, mode="full")["status"] == "success"
    before = vendor_slots(es, settings, name)
    moved = dict(offers[0], location={"lat": 44.25, "lon": 0.65})
    write_offers(es, settings, [moved])
    incremental = harvester.run(name, mode="incremental")
    assert incremental["upserted"] == 0 and incremental["unchanged"] > 0     # sources unchanged: not remapped
    full = harvester.run(name, mode="full")
    after = vendor_slots(es, settings, name)
    changed = {sid for sid, s in after.items() if s["offer_id"] == moved["id"]}
    assert changed and full["upserted"] == len(changed)
    assert all(after[sid]["location"] == {"lat": 44.25, "lon": 0.65} for sid in changed)
    assert all(after[sid]["harvested_at"] > before[sid]["harvested_at"] for sid in changed)
    assert all(after[sid]["location"] == before[sid]["location"] for sid in set(after) - changed)
