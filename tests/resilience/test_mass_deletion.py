"""An empty answer must not wipe a vendor (issue 14, point 2).

A vendor-side bug answers ``200`` with an empty searchset to every search: to the harvester that looks
like "every slot was taken". Real processes only: the vendor simulator (real HTTP server, fault
``empty_rate``), the real harvester, the resilience suite's own Elasticsearch node and the real API
(uvicorn) for the harvest-health page and ``/metrics``. The normal case — a few slots taken at the
vendor — must still delete them in the same run.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from bench.common import free_port
from connectors.vendors.config import VendorConfig
from indexer.harvest import Harvester
from indexer.lifecycle import drop_prefix, setup_indices
from mappings.registry import alias_name
from simulator.app import Simulator
from simulator.roster import rosters_from_offers
from simulator.server import SimulatorThread
from tests.integration.harvest.conftest import town_offers, write_offers
from tests.integration.ops.test_metrics import samples, value
from tests.resilience.conftest import ApiServer, slot_ids
from tests.weblogin import post_login

# The resilience suite's own node (free port in 9250-9299, home under /tmp, removed afterwards): one
# instance for this module, never the shared node on 9200.

EMPTY, TAKEN, SMALL = "res-empty", "res-taken", "res-small"


@dataclass
class Guarded:
    prefix: str
    settings: object
    simulator_url: str
    vendors: dict[str, VendorConfig]
    es: object
    api: ApiServer
    harvester: Harvester


@pytest.fixture(scope="module")
def guarded(own_node, test_prefix) -> Iterator[Guarded]:
    node, es = own_node
    prefix = f"{test_prefix}-wipe{uuid.uuid4().hex[:4]}"
    own = node.model_copy(update={"index_prefix": prefix})
    setup_indices(es, prefix=prefix)
    offers = (town_offers(EMPTY, 40, start=60_000) + town_offers(TAKEN, 20, start=61_000)
              + town_offers(SMALL, 1, start=62_000))
    write_offers(es, own, offers)
    port = free_port()
    simulator = Simulator(rosters_from_offers(offers), public_url=f"http://127.0.0.1:{port}", taken_share=0.0)
    thread = SimulatorThread(simulator, port=port).start()
    vendors = {name: VendorConfig(name=name, base_url=f"http://127.0.0.1:{port}/{name}/fhir", use_cases=["ps", "cpts"],
                                  timeout_s=5.0, max_attempts=1, concurrency=2) for name in (EMPTY, TAKEN, SMALL)}
    try:
        with ApiServer(own, es) as api:
            yield Guarded(prefix, own, f"http://127.0.0.1:{port}", vendors, es, api,
                          Harvester(es=es, settings=own, vendors=list(vendors.values())))
    finally:
        thread.stop()
        drop_prefix(es, prefix=prefix)


def faults(world: Guarded, vendor: str, **values) -> None:
    httpx.put(f"{world.simulator_url}/_admin/vendors/{vendor}/faults", json=values, timeout=5).raise_for_status()


def health_page(world: Guarded) -> str:
    with httpx.Client(base_url=world.api.url, timeout=10, follow_redirects=False) as client:
        login = post_login(client, {"role": "admin", "territories": "SAS-47", "next": "/app/recherche"})
        assert login.status_code == 303, login.text
        page = client.get("/app/tableaux/collecte")
    assert page.status_code == 200, page.text
    return page.text


def eventually(check, *, within_s: float = 10.0):
    """``check()`` until it holds: a run document is searchable after the index's next refresh (1 s)."""
    deadline = time.monotonic() + within_s
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.2)


def held_gauge(world: Guarded, token_for, vendor: str) -> float:
    answer = httpx.get(f"{world.api.url}/metrics", headers=token_for("admin"), timeout=10)
    assert answer.status_code == 200, answer.text
    found = samples(answer.text)
    assert ("sas_harvest_deletions_held", (("vendor", vendor),)) in found, "no alert gauge for the vendor"
    return value(found, "sas_harvest_deletions_held", vendor=vendor)


@pytest.mark.timeout(120)
def test_an_empty_answer_does_not_wipe_the_vendor(guarded: Guarded, token_for):
    world, es = guarded, guarded.es
    faults(world, EMPTY)
    first = world.harvester.run(world.vendors[EMPTY], mode="full")
    assert first["status"] == "success" and first["upserted"] > 0, first
    before = slot_ids(es, world.prefix, vendor=EMPTY)
    # Enough slots that the default guard (share 0.5, from 20 deletions on) is what is exercised.
    assert len(before) > 2 * world.settings.harvest_mass_delete_min, len(before)

    faults(world, EMPTY, empty_rate=1.0)                  # 200, empty searchset, to every search
    wiped = world.harvester.run(world.vendors[EMPTY], mode="full")

    # Nothing deleted, everything kept and marked stale, and the run says why (not a plain success).
    after = slot_ids(es, world.prefix, vendor=EMPTY)
    assert set(after) == set(before), f"{len(set(before) - set(after))} slots deleted"
    assert wiped["deleted"] == 0, wiped
    assert wiped["status"] == "partial", wiped
    assert wiped["deletions_held"] == len(before), wiped
    assert wiped["alerts"] and set(wiped["alerts"]) <= {"batch_mass_deletion", "run_mass_deletion"}, wiped
    assert any("mass deletion held" in message for message in wiped["errors"]), wiped["errors"]
    assert all(source["stale_since"] for source in after.values())
    stored = es.get(index=alias_name(world.prefix, "harvest_runs"), id=wiped["id"])["_source"]
    assert stored["deletions_held"] == len(before) and stored["status"] == "partial"

    # The alert is on the harvest-health page and in /metrics (read from the run record).
    alert = f"Suppression massive retenue : {len(before)} créneaux"
    assert eventually(lambda: alert in health_page(world)), health_page(world)
    assert eventually(lambda: held_gauge(world, token_for, EMPTY) == len(before))

    # The vendor is fixed: its slots come back fresh and the alert clears.
    faults(world, EMPTY)
    healed = world.harvester.run(world.vendors[EMPTY], mode="full")
    assert healed["status"] == "success" and healed["deletions_held"] == 0 and healed["alerts"] == [], healed
    assert not any(source["stale_since"] for source in slot_ids(es, world.prefix, vendor=EMPTY).values())
    assert eventually(lambda: held_gauge(world, token_for, EMPTY) == 0), held_gauge(world, token_for, EMPTY)
    assert "Suppression massive retenue" not in health_page(world)


@pytest.mark.timeout(120)
def test_a_few_slots_taken_are_deleted_at_once(guarded: Guarded, token_for):
    world, es = guarded, guarded.es
    first = world.harvester.run(world.vendors[TAKEN], mode="incremental")
    assert first["status"] == "success", first
    before = slot_ids(es, world.prefix, vendor=TAKEN)
    taken = httpx.post(f"{world.simulator_url}/_admin/vendors/{TAKEN}/take",
                       json={"count": 3, "within_h": 24, "seed": 3}, timeout=5).json()["taken"]
    assert len(taken) == 3
    gone = {f"{TAKEN}:{slot_id}" for slot_id in taken}
    assert gone <= set(before)

    run = world.harvester.run(world.vendors[TAKEN], mode="incremental")
    assert run["status"] == "success" and run["deleted"] == 3 and run["deletions_held"] == 0, run
    assert run["alerts"] == []
    after = slot_ids(es, world.prefix, vendor=TAKEN)
    assert set(after) == set(before) - gone
    assert not any(source["stale_since"] for source in after.values())
    assert eventually(lambda: ("sas_harvest_deletions_held", (("vendor", TAKEN),)) in samples(
        httpx.get(f"{world.api.url}/metrics", headers=token_for("admin"), timeout=10).text))
    assert held_gauge(world, token_for, TAKEN) == 0


@pytest.mark.timeout(120)
def test_an_answer_contradicting_its_total_is_not_trusted_even_for_a_small_vendor(guarded: Guarded):
    """Below the minimum count an emptied agenda is believed (a small vendor losing its few slots is
    business), unless the answer itself announces matches it did not send (``Bundle.total``)."""
    world, es = guarded, guarded.es
    # A minimum count above the vendor's whole agenda (how many slots a day brings depends on the hour).
    lenient = world.settings.model_copy(update={"harvest_mass_delete_min": 10_000})
    harvester = Harvester(es=es, settings=lenient, vendors=[world.vendors[SMALL]])
    faults(world, SMALL)
    assert harvester.run(world.vendors[SMALL], mode="incremental")["status"] == "success"
    before = slot_ids(es, world.prefix, vendor=SMALL)
    assert 0 < len(before) < lenient.harvest_mass_delete_min, len(before)

    faults(world, SMALL, empty_rate=1.0, empty_keeps_total=True)
    run = harvester.run(world.vendors[SMALL], mode="incremental")
    assert run["status"] == "partial" and run["deleted"] == 0, run
    assert run["alerts"] == ["total_mismatch"] and run["deletions_held"] == len(before), run
    after = slot_ids(es, world.prefix, vendor=SMALL)
    assert set(after) == set(before) and all(source["stale_since"] for source in after.values())

    faults(world, SMALL, empty_rate=1.0)                  # empty and consistent (total 0): believed
    run = harvester.run(world.vendors[SMALL], mode="incremental")
    assert run["status"] == "success" and run["deleted"] == len(before) and run["deletions_held"] == 0, run
    assert slot_ids(es, world.prefix, vendor=SMALL) == {}
