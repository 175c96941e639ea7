"""``sas snapshot create`` / ``restore --replace`` end to end on the real node, with harvested slots and
directory offers: snapshot, delete the indices, restore, compare every document."""

from __future__ import annotations

import uuid

from elasticsearch import helpers
from typer.testing import CliRunner

from bench.common import free_port
from connectors.vendors.config import VendorConfig
from indexer import lifecycle
from indexer.harvest import Harvester
from mappings.registry import alias_name
from sas_core import local_es
from simulator.app import Simulator
from simulator.roster import rosters_from_offers
from simulator.server import SimulatorThread
from tests.guard import GuardedElasticsearch
from tests.integration.harvest.conftest import town_offers, write_offers


def documents(es, alias: str) -> dict[str, dict]:
    es.indices.refresh(index=alias)
    return {hit["_id"]: hit["_source"] for hit in helpers.scan(es, index=alias)}


def test_cli_snapshot_restores_what_was_deleted(settings, es_node, monkeypatch):
    from sas_cli.main import app

    prefix = f"{settings.index_prefix}-snapcli"
    local = settings.model_copy(update={"index_prefix": prefix})
    es = GuardedElasticsearch(settings.es_url, allowed_prefix=prefix, request_timeout=120)
    repository = f"{prefix}-repo"
    location = str(local_es._paths(settings)["repo"] / f"{prefix}-{uuid.uuid4().hex[:6]}")
    for key, value in {"SAS_ES_URL": settings.es_url, "SAS_INDEX_PREFIX": prefix,
                       "SAS_SNAPSHOT_REPOSITORY": repository, "SAS_SNAPSHOT_LOCATION": location}.items():
        monkeypatch.setenv(key, value)
    runner = CliRunner()
    try:
        lifecycle.setup_indices(es, prefix=prefix)
        offers = town_offers("snap-vendor", 15, start=70_000)
        write_offers(es, local, offers)
        port = free_port()
        with SimulatorThread(Simulator(rosters_from_offers(offers), public_url=f"http://127.0.0.1:{port}",
                                       taken_share=0.0), port=port):
            vendor = VendorConfig(name="snap-vendor", base_url=f"http://127.0.0.1:{port}/snap-vendor/fhir",
                                  use_cases=["ps", "cpts"])
            run = Harvester(es=es, settings=local, vendors=[vendor]).run("snap-vendor", mode="full")
        assert run["status"] == "success" and run["upserted"] > 0
        aliases = [alias_name(prefix, name) for name in ("offers", "slots", "harvest_runs")]
        before = {alias: documents(es, alias) for alias in aliases}
        assert all(before.values())

        made = runner.invoke(app, ["snapshot", "create", "--name", "s1"])
        assert made.exit_code == 0, made.output
        assert "SUCCESS" in made.output

        # Disaster: the slots and offers indices are gone.
        for alias in aliases[:2]:
            es.indices.delete(index=",".join(lifecycle.indices_behind(es, alias)))
        assert not es.indices.exists_alias(name=aliases[1])

        restored = runner.invoke(app, ["snapshot", "restore", "s1", "--replace"])
        assert restored.exit_code == 0, restored.output
        for alias in aliases:
            es.cluster.health(index=alias, wait_for_status="yellow", timeout="30s")
            assert documents(es, alias) == before[alias], alias
    finally:
        lifecycle.drop_prefix(es, prefix=prefix)
        try:
            es.snapshot.delete(repository=repository, snapshot="s1")
            es.snapshot.delete_repository(name=repository)
        except Exception:  # noqa: BLE001 - cleanup only
            pass
        es.close()
