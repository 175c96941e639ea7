"""Resilience suite helpers: the real API served by uvicorn on loopback, the vendor simulator (HTTP and
mutual-TLS HTTPS), offers and harvested slots under an index prefix of the suite's own.

Every test here carries an explicit ``pytest.mark.timeout``; the whole suite is meant to stay under
about four minutes on the 2-core development machine.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import socket
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import trustme
import uvicorn

from bench.common import free_port, percentile
from connectors.vendors.config import VendorConfig
from indexer.lifecycle import drop_prefix, setup_indices
from mappings.registry import alias_name
from sas_core import local_es
from simulator.app import Simulator
from simulator.roster import rosters_from_offers
from simulator.server import ServerTls, SimulatorThread
from tests.guard import GuardedElasticsearch
from tests.integration.harvest.conftest import town_offers, write_offers
from tests.tls_files import vendor_tls_files

#: Search point of every resilience search (Agen, where ``town_offers`` puts its practitioners).
AGEN = {"lat": 44.2033, "lon": 0.6163, "radius_km": 10}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/resilience" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


class ApiServer:
    """``create_app`` served by a real uvicorn on a free loopback port, from a background thread."""

    def __init__(self, settings, es) -> None:
        from search_api.app import create_app

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(create_app(settings, es=es), host="127.0.0.1", port=self.port, log_level="warning",
                                access_log=False)
        self.server = uvicorn.Server(config)
        self.server.install_signal_handlers = lambda: None
        self.thread = threading.Thread(target=lambda: asyncio.run(self.server.serve()), name="api", daemon=True)

    def __enter__(self) -> ApiServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.server.started:
                return self
            time.sleep(0.02)
        raise RuntimeError("the API did not start")

    def __exit__(self, *exc_info) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@dataclass
class Latencies:
    """Search latencies (seconds) of one phase."""

    values: list[float]
    statuses: list[int]

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def p95(self) -> float:
        return percentile(self.values, 95, method="nearest")


def measure_searches(client: httpx.Client, headers: dict, *, count: int) -> Latencies:
    """``count`` sequential searches near Agen; latency measured by the client, end to end."""
    values, statuses = [], []
    for _ in range(count):
        started = time.perf_counter()
        response = client.get("/v1/search", params=AGEN, headers=headers)
        values.append(time.perf_counter() - started)
        statuses.append(response.status_code)
    return Latencies(values, statuses)


def slot_ids(es, prefix: str, *, vendor: str | None = None) -> dict[str, dict]:
    """``_id → _source`` of every slot of ``prefix`` (optionally of one vendor), after a refresh."""
    from elasticsearch import helpers

    alias = alias_name(prefix, "slots")
    es.indices.refresh(index=alias)
    query = {"term": {"vendor": vendor}} if vendor else {"match_all": {}}
    return {hit["_id"]: hit["_source"] for hit in helpers.scan(
        es, index=alias, query={"query": query, "_source": ["vendor", "vendor_slot_id", "stale_since", "start"]})}


def tls_material(folder: Path) -> dict[str, Path]:
    """A CA, the simulator's server certificate and our client certificate (PEM files)."""
    paths = vendor_tls_files(folder)
    # A second, unrelated CA: a vendor presenting a certificate we cannot verify (TLS failure).
    other = folder / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    paths["other_ca"] = other
    return paths


@dataclass
class World:
    """The resilience world: prefix, settings, simulator, vendors and the API."""

    prefix: str
    settings: object
    simulator: SimulatorThread
    vendors: dict[str, VendorConfig]
    tls: dict[str, Path]
    api: ApiServer
    headers: dict[str, str]

    def set_faults(self, vendor: str, **faults) -> None:
        httpx.put(f"http://127.0.0.1:{self.simulator.port}/_admin/vendors/{vendor}/faults",
                  json=faults, timeout=5).raise_for_status()


#: One simulated vendor per fault kind (and the fault-free baseline uses all of them, healthy).
FAULT_VENDORS = ("res-timeout", "res-5xx", "res-malformed", "res-slow", "res-tls")


@pytest.fixture(scope="package")
def world(es, settings, test_prefix, token_for, tmp_path_factory) -> Iterator[World]:
    prefix = f"{test_prefix}-res{uuid.uuid4().hex[:4]}"
    world_settings = settings.model_copy(update={"index_prefix": prefix})
    setup_indices(es, prefix=prefix)
    offers: list[dict] = []
    for number, name in enumerate(FAULT_VENDORS):
        offers += town_offers(name, 20, start=50_000 + 100 * number)
    write_offers(es, world_settings, offers)
    tls = tls_material(tmp_path_factory.mktemp("resilience-tls"))
    port = free_port()
    simulator = Simulator(rosters_from_offers(offers), public_url=f"http://127.0.0.1:{port}", taken_share=0.0)
    thread = SimulatorThread(simulator, port=port, https_port=free_port(),
                             tls=ServerTls(tls["server_cert"], tls["server_key"], tls["ca"])).start()
    vendors = {}
    for name in FAULT_VENDORS:
        common = dict(name=name, use_cases=["ps", "cpts"], backoff_initial_s=0.02, backoff_max_s=0.1, max_attempts=2,
                      breaker_reset_s=0.5, timeout_s=1.0, concurrency=2)
        if name == "res-tls":
            vendors[name] = VendorConfig(base_url=f"https://127.0.0.1:{thread.https_port}/{name}/fhir",
                                         tls={"cert": tls["client_cert"], "key": tls["client_key"], "ca": tls["ca"]},
                                         **common)
        else:
            vendors[name] = VendorConfig(base_url=f"http://127.0.0.1:{port}/{name}/fhir", **common)
    headers = token_for("osnp", territories=["SAS-47"])
    with ApiServer(world_settings, es) as api:
        yield World(prefix, world_settings, thread, vendors, tls, api, headers)
    thread.stop()
    drop_prefix(es, prefix=prefix)


@pytest.fixture
def background() -> Iterator[Callable]:
    """``background(fn)``: call ``fn()`` in a loop from a thread until the test ends (or ``stop()``)."""
    runners: list[tuple[threading.Event, threading.Thread]] = []
    errors: list[BaseException] = []

    def start(fn: Callable[[], object]) -> Callable[[], int]:
        stop = threading.Event()
        done = [0]

        def loop() -> None:
            while not stop.is_set():
                try:
                    fn()
                    done[0] += 1
                except BaseException as exc:  # noqa: BLE001 - surfaced to the test below
                    errors.append(exc)
                    return

        thread = threading.Thread(target=loop, daemon=True)
        runners.append((stop, thread))
        thread.start()

        def halt() -> int:
            stop.set()
            thread.join(timeout=60)
            if errors:
                raise errors[0]
            return done[0]

        return halt

    yield start
    for stop, thread in runners:
        stop.set()
        thread.join(timeout=60)


# -- an Elasticsearch node of the module's own ----------------------------------------------------------------


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_node_port() -> int:
    """An HTTP port in 9250-9299 whose transport port (+100, see ``local_es``) is free too. Several test
    sessions may run this suite at once: each gets its own node, never another session's."""
    candidates = list(range(9250, 9300))
    random.shuffle(candidates)
    for port in candidates:
        if _port_is_free(port) and _port_is_free(port + 100):
            return port
    raise RuntimeError("no free port pair for the test node in 9250-9299")


@pytest.fixture(scope="module")
def own_node(settings, test_prefix):
    """A separate node (never the shared one), with its own home under /tmp, 512 MB heap, started for the
    module, stopped and removed at its end: ``(settings of the node, guarded client)``."""
    home = Path(f"/tmp/sas-es-resilience-{test_prefix}")
    node = settings.model_copy(update={"es_url": f"http://127.0.0.1:{_free_node_port()}", "es_home": home,
                                       "es_heap": "512m", "harvest_bulk_chunk": 200})
    assert node.es_port != settings.es_port, "a resilience test must never stop the shared node"
    status = local_es.start(node, timeout_s=180)
    assert status.managed_pid is not None, f"{node.es_url} answered but is not this session's node"
    client = GuardedElasticsearch(node.es_url, allowed_prefix=test_prefix, request_timeout=30, max_retries=0)
    yield node, client
    client.close()
    local_es.stop(node)
    shutil.rmtree(home, ignore_errors=True)
