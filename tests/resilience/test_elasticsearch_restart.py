"""Elasticsearch stopped and restarted during a harvest and during searches.

The shared node on 9200 is never touched: this test starts its own single node on a free port in
9250-9299 (own home under /tmp per test session, 512 MB heap) through ``sas_core.local_es``, and stops
and removes it at the end.

While the node is down the API answers 503 with a Retry-After (never a 500, never a hang); the harvest
that was running fails cleanly and the next one resumes; afterwards the indexed slots are exactly the
simulator's truth (what a harvest into an empty index finds): none duplicated, none missing.
"""

from __future__ import annotations

import threading
import time
import uuid
from datetime import timedelta

import httpx
import pytest

from bench.common import free_port
from connectors.vendors.config import VendorConfig
from indexer.harvest import Harvester, utcnow
from indexer.lifecycle import drop_prefix, setup_indices
from mappings.registry import alias_name
from sas_core import local_es
from simulator.app import Simulator
from simulator.roster import rosters_from_offers
from simulator.server import SimulatorThread
from tests.integration.harvest.conftest import town_offers, write_offers
from tests.resilience.conftest import AGEN, ApiServer, slot_ids

VENDOR = "res-es"


def _vendor(port: int) -> VendorConfig:
    # One request in flight, slow answers: the harvest lasts long enough to lose its node midway.
    return VendorConfig(name=VENDOR, base_url=f"http://127.0.0.1:{port}/{VENDOR}/fhir", use_cases=["ps", "cpts"],
                        concurrency=1, batch_size=10, backoff_initial_s=0.02, backoff_max_s=0.1, max_attempts=2,
                        timeout_s=5, breaker_reset_s=0.5)


def _es_errors() -> float:
    """Total of ``sas_elasticsearch_errors_total`` in this process, all kinds."""
    from prometheus_client import REGISTRY

    return sum(sample.value for metric in REGISTRY.collect() if metric.name == "sas_elasticsearch_errors"
               for sample in metric.samples if sample.name == "sas_elasticsearch_errors_total")


def _vendor_slots(client, prefix: str) -> dict[str, dict]:
    return slot_ids(client, prefix, vendor=VENDOR)


@pytest.mark.timeout(300)
def test_api_answers_503_while_elasticsearch_is_down_and_the_harvest_resumes(own_node, test_prefix, token_for):
    node, es = own_node
    t0 = time.monotonic()

    def mark(what: str) -> None:
        print(f"[{time.monotonic() - t0:6.1f}s] {what}", flush=True)

    prefix = f"{test_prefix}-esr{uuid.uuid4().hex[:4]}"
    truth_prefix = f"{prefix}-truth"
    app_settings = node.model_copy(update={"index_prefix": prefix})
    offers = town_offers(VENDOR, 60, start=60_000)
    for name in (prefix, truth_prefix):
        setup_indices(es, prefix=name)
        write_offers(es, node.model_copy(update={"index_prefix": name}), offers)

    port = free_port()
    simulator = Simulator(rosters_from_offers(offers), public_url=f"http://127.0.0.1:{port}", taken_share=0.0)
    headers = token_for("osnp", territories=["SAS-47"])
    now = utcnow()
    window = dict(mode="full", now=now, start=now.replace(microsecond=0),
                  end=now.replace(microsecond=0) + timedelta(days=7))

    with SimulatorThread(simulator, port=port) as sim, ApiServer(app_settings, es) as api:
        httpx.put(f"http://127.0.0.1:{sim.port}/_admin/vendors/{VENDOR}/faults",
                  json={"latency_ms": 700}).raise_for_status()
        harvester = Harvester(es=es, settings=app_settings, vendors=[_vendor(sim.port)])

        # Searches run all along, recording what the API answered.
        answers: list[tuple[float, int, str | None]] = []
        searching = threading.Event()
        searching.set()

        def search_loop() -> None:
            with httpx.Client(base_url=api.url, timeout=30) as client:
                while searching.is_set():
                    response = client.get("/v1/search", params=AGEN, headers=headers)
                    answers.append((time.monotonic(), response.status_code, response.headers.get("retry-after")))
                    time.sleep(0.05)

        errors_before = _es_errors()
        searcher = threading.Thread(target=search_loop, daemon=True)
        searcher.start()

        interrupted: dict = {}
        harvest = threading.Thread(target=lambda: interrupted.update(harvester.run(VENDOR, **window)), daemon=True)
        mark('harvest started')
        harvest.start()
        alias = alias_name(prefix, "slots")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:            # wait until the harvest has written something
            es.indices.refresh(index=alias)
            if es.count(index=alias)["count"] > 0:
                break
            time.sleep(0.2)
        assert harvest.is_alive(), "the harvest ended before the node could be stopped: make it slower"

        mark('stopping node')
        stopped_at = time.monotonic()
        assert local_es.stop(node)
        time.sleep(2.0)                               # searches keep coming while the node is down
        down_until = time.monotonic()
        mark('waiting for harvest')
        harvest.join(timeout=90)
        assert not harvest.is_alive()
        assert interrupted["status"] in {"failed", "partial"}, interrupted

        mark('restarting')
        local_es.start(node, timeout_s=180)
        restarted_at = time.monotonic()
        es.cluster.health(index=alias, wait_for_status="yellow", timeout="60s")
        time.sleep(1.0)
        searching.clear()
        searcher.join(timeout=30)

        # While the node was down: 503 with a Retry-After, never anything else.
        during = [(status, retry) for at, status, retry in answers if stopped_at + 1.0 < at < down_until]
        assert during, "no search was answered while the node was down"
        assert {status for status, _ in during} == {503}, during
        assert all(retry and int(retry) > 0 for _, retry in during)
        # Every failed Elasticsearch call is counted (API and harvester alike): sas_elasticsearch_errors_total.
        assert _es_errors() - errors_before >= len(during)
        assert all(status in (200, 503) for _, status, _ in answers)
        after = [status for at, status, _ in answers if at > restarted_at + 0.5]
        assert after and after[-1] == 200, after

        # The harvest resumes: the next run (the scheduler's next tick) completes.
        httpx.put(f"http://127.0.0.1:{sim.port}/_admin/vendors/{VENDOR}/faults", json={}).raise_for_status()
        mark('resuming harvest')
        resumed = harvester.run(VENDOR, **window)
        assert resumed["status"] == "success", resumed

        # Truth: the same window harvested into empty indices.
        mark('reference harvest')
        truth_settings = node.model_copy(update={"index_prefix": truth_prefix})
        reference = Harvester(es=es, settings=truth_settings, vendors=[_vendor(sim.port)]).run(VENDOR, **window)
        assert reference["status"] == "success" and reference["upserted"] > 0

    got, expected = _vendor_slots(es, prefix), _vendor_slots(es, truth_prefix)
    assert set(got) == set(expected), (len(set(got) - set(expected)), len(set(expected) - set(got)))
    vendor_ids = [source["vendor_slot_id"] for source in got.values()]
    assert len(vendor_ids) == len(set(vendor_ids)), "a vendor slot is indexed twice"
    assert es.count(index=alias_name(prefix, "slots"), query={"term": {"vendor": VENDOR}})["count"] == len(expected)
    assert all(source["stale_since"] is None for source in got.values())
    print(f"\nnode down {down_until - stopped_at:.1f}s; {len(during)} searches answered 503 meanwhile; "
          f"interrupted harvest: {interrupted['status']}; {len(expected)} slots after resuming, as the truth")
    drop_prefix(es, prefix=prefix)
