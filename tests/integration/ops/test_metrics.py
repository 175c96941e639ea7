"""``/metrics`` after a real harvest against the vendor simulator: per-vendor harvest figures, circuit
state, search result counts and per-route latency are all exposed (and only to admins)."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench.common import free_port
from connectors.vendors.config import VendorConfig
from indexer.harvest import Harvester
from simulator.app import Simulator
from simulator.roster import rosters_from_offers
from simulator.server import SimulatorThread
from tests.integration.harvest.conftest import town_offers, write_offers


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """``(sample name, sorted labels) → value`` of a Prometheus exposition."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: dict, name: str, **labels) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_show_per_vendor_harvest_figures(es, indices, settings, api, token_for):
    healthy, broken = "ops-metrics-ok", "ops-metrics-down"
    offers = town_offers(healthy, 12, start=7100) + town_offers(broken, 6, start=7200)
    write_offers(es, settings, offers)
    port = free_port()
    simulator = Simulator(rosters_from_offers(offers), public_url=f"http://127.0.0.1:{port}", taken_share=0.0)
    admin = token_for("admin")
    before = samples(api.get("/metrics", headers=admin).text)

    with SimulatorThread(simulator, port=port):
        httpx.put(f"http://127.0.0.1:{port}/_admin/vendors/{broken}/faults", json={"down": True}).raise_for_status()
        vendors = [VendorConfig(name=name, base_url=f"http://127.0.0.1:{port}/{name}/fhir", use_cases=["ps", "cpts"],
                                backoff_initial_s=0.01, backoff_max_s=0.02, max_attempts=2, breaker_threshold=1,
                                breaker_reset_s=60, timeout_s=3)
                   for name in (healthy, broken)]
        harvester = Harvester(es=es, settings=settings, vendors=vendors)
        ok = harvester.run(healthy, mode="incremental")
        failed = harvester.run(broken, mode="incremental")
    assert ok["status"] == "success" and ok["upserted"] > 0
    assert failed["status"] == "failed"

    # A search, to see result counts and the route latency.
    searched = api.get("/v1/search", params={"lat": 44.2033, "lon": 0.6163, "radius_km": 5},
                       headers=token_for("osnp", territories=["SAS-47"]))
    assert searched.status_code == 200, searched.text

    response = api.get("/metrics", headers=admin)
    assert response.status_code == 200
    after = samples(response.text)

    def delta(name: str, **labels) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("sas_harvest_runs_total", vendor=healthy, status="success") == 1
    assert delta("sas_harvest_runs_total", vendor=broken, status="failed") == 1
    assert delta("sas_harvest_slots_total", vendor=healthy, action="upserted") == ok["upserted"]
    assert delta("sas_harvest_duration_seconds_count", vendor=healthy) == 1
    assert value(after, "sas_harvest_last_success_timestamp", vendor=healthy) > 0
    assert value(after, "sas_harvest_last_success_timestamp", vendor=broken) == 0
    # The broken vendor's breaker opened after its first failure (threshold 1); the healthy one is closed.
    assert value(after, "sas_vendor_circuit_state", vendor=broken) == 2
    assert ("sas_vendor_circuit_state", (("vendor", healthy),)) in after
    assert value(after, "sas_vendor_circuit_state", vendor=healthy) == 0
    assert delta("sas_search_results_count", endpoint="search") == 1
    assert delta("sas_search_results_sum", endpoint="search") == searched.json()["total"]
    assert delta("sas_http_request_duration_seconds_count", method="GET", route="/v1/search", status="200") == 1


def test_metrics_need_an_admin(api, token_for):
    assert api.get("/metrics").status_code == 401
    assert api.get("/metrics", headers=token_for("osnp", territories=["SAS-47"])).status_code == 403


def test_scheduler_process_serves_its_own_metrics(es, indices, settings):
    """``sas scheduler`` runs apart from the API in compose: it exposes the harvest figures itself."""
    from sas_core.metrics import serve_metrics

    name = "ops-metrics-sched"
    offers = town_offers(name, 5, start=7300)
    write_offers(es, settings, offers)
    port = free_port()
    simulator = Simulator(rosters_from_offers(offers), public_url=f"http://127.0.0.1:{port}", taken_share=0.0)
    with SimulatorThread(simulator, port=port):
        vendor = VendorConfig(name=name, base_url=f"http://127.0.0.1:{port}/{name}/fhir", use_cases=["ps", "cpts"])
        run = Harvester(es=es, settings=settings, vendors=[vendor]).run(name, mode="incremental")
    assert run["status"] == "success"
    metrics_port = free_port()
    server, thread = serve_metrics(host="127.0.0.1", port=metrics_port)
    try:
        found = samples(httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text)
    finally:
        server.shutdown()
    assert value(found, "sas_harvest_runs_total", vendor=name, status="success") == 1
    assert value(found, "sas_harvest_slots_total", vendor=name, action="upserted") == run["upserted"]
