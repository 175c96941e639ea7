"""The generated demo world under a prefix of its own: the directory generator's RPPS / FINESS /
participation files and its BAN-format address files, loaded through the real paths (``load_addresses``
then ``load_directory``), slots harvested from the strict vendor simulator, and the real app on top."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from elasticsearch import helpers

from bench.common import free_port
from connectors.vendors.config import VendorConfig
from indexer.addresses import load_addresses
from indexer.directory import LoadSummary, load_directory
from indexer.harvest import Harvester
from indexer.lifecycle import drop_prefix, setup_indices
from mappings.registry import alias_name
from simulator.app import Simulator
from simulator.generate.directory import generate_directory
from simulator.roster import rosters_from_offers
from simulator.server import SimulatorThread

DEPARTEMENTS = ["47", "33", "75"]


@dataclass
class DemoWorld:
    settings: object
    generated: object
    addresses: object
    directory: LoadSummary
    harvested: int

    def alias(self, name: str) -> str:
        return alias_name(self.settings.index_prefix, name)


@pytest.fixture(scope="package")
def demo_world(es, settings, tmp_path_factory) -> Iterator[DemoWorld]:
    prefix = f"{settings.index_prefix}-adr{uuid.uuid4().hex[:4]}"
    local = settings.model_copy(update={"index_prefix": prefix})
    setup_indices(es, prefix=prefix)
    out = tmp_path_factory.mktemp("demo-addresses")
    generated = generate_directory(out_dir=out, places=2500, departements=DEPARTEMENTS)
    addresses = load_addresses(settings=local, es=es, paths=generated.addresses)
    directory = load_directory(settings=local, es=es, rpps_path=generated.rpps, finess_path=generated.finess,
                               participation_path=generated.participation, full=True, progress=False)
    offers = [hit["_source"] for hit in helpers.scan(es, index=alias_name(prefix, "offers"))]
    rosters = rosters_from_offers(offers)
    port = free_port()
    harvested = 0
    with SimulatorThread(Simulator(rosters, public_url=f"http://127.0.0.1:{port}", taken_share=0.0), port=port):
        vendors = [VendorConfig(name=name, base_url=f"http://127.0.0.1:{port}/{name}/fhir",
                                use_cases=(["ps", "cpts"] if r.practitioners else [])
                                + (["sos"] if r.associations else []))
                   for name, r in sorted(rosters.items()) if r.practitioners or r.associations]
        harvester = Harvester(es=es, settings=local, vendors=vendors)
        for vendor in vendors:
            run = harvester.run(vendor.name, mode="incremental")
            harvested += run["upserted"]
    es.indices.refresh(index=alias_name(prefix, "slots"))
    yield DemoWorld(local, generated, addresses, directory, harvested)
    drop_prefix(es, prefix=prefix)


@pytest.fixture(scope="package")
def demo_api(demo_world, es):
    from fastapi.testclient import TestClient

    from search_api.app import create_app

    with TestClient(create_app(demo_world.settings, es=es), follow_redirects=False) as client:
        yield client
