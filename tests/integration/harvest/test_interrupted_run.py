"""Issue 14, point 6: a harvest process killed with ``kill -9`` blocks its vendor only for the (short)
run lease, and leaves a ``running`` run document that the next run, holding the lease, marks
``interrupted``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from connectors.vendors.config import VendorConfig
from indexer.harvest import Harvester
from indexer.leader import LeaderElection, LeaseLock
from indexer.scheduler import HarvestJobs
from mappings.registry import alias_name
from tests.integration.harvest.conftest import town_offers, write_offers
from tests.schedulers import wait_for

TTL_S = 3
VENDOR = "killed-vendor"

#: The harvest process: takes the vendor's lease like ``sas harvest`` and runs against a vendor that
#: accepts connections and never answers (the run stays in progress until it is killed).
SCRIPT = textwrap.dedent("""
    import sys
    from connectors.vendors.config import VendorConfig
    from indexer.harvest import Harvester
    from indexer.leader import LeaseLock
    from sas_core.es import make_client
    from sas_core.settings import Settings

    settings = Settings()
    es = make_client(settings)
    vendor = VendorConfig(name=sys.argv[1], base_url=sys.argv[2], use_cases=["ps"], timeout_s=120, max_attempts=1)
    lock = LeaseLock(es, prefix=settings.index_prefix, name="harvest-" + vendor.name,
                     ttl_s=settings.harvest_run_lock_ttl_s)
    with lock.holding() as got:
        assert got
        Harvester(es=es, settings=settings, vendors=[vendor]).run(vendor, mode="incremental")
""")


def _runs(es, prefix: str) -> list[dict]:
    alias = alias_name(prefix, "harvest_runs")
    es.indices.refresh(index=alias)
    hits = es.search(index=alias, query={"term": {"vendor": VENDOR}}, size=20)["hits"]["hits"]
    return [hit["_source"] for hit in hits]


@pytest.mark.timeout(60)
def test_killed_harvest_blocks_its_vendor_one_lease_and_is_recorded_interrupted(es, indices, settings):
    write_offers(es, settings, town_offers(VENDOR, 3, start=91_000))
    silent = socket.create_server(("127.0.0.1", 0))      # accepts (backlog), never answers
    closed = socket.create_server(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()                                          # connection refused: the next run fails fast
    env = {**os.environ, "SAS_ES_URL": settings.es_url, "SAS_INDEX_PREFIX": settings.index_prefix,
           "SAS_HARVEST_RUN_LOCK_TTL_S": str(TTL_S), "SAS_VENDORS_FILE": ""}
    process = subprocess.Popen([sys.executable, "-c", SCRIPT, VENDOR,
                                f"http://127.0.0.1:{silent.getsockname()[1]}/fhir"],
                               env=env, cwd=Path(__file__).resolve().parents[3])
    try:
        assert wait_for(lambda: any(r["status"] == "running" for r in _runs(es, settings.index_prefix)), 30), \
            "the harvest process did not record its start"
        time.sleep(TTL_S)                                   # the lease outlives its first TTL: it is renewed
        contender = LeaseLock(es, prefix=settings.index_prefix, name=f"harvest-{VENDOR}", ttl_s=TTL_S)
        assert not contender.acquire(), "the lease of a running harvest must be renewed, not expire"
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        killed_at = time.monotonic()
        assert wait_for(contender.acquire, TTL_S + 5)
        assert time.monotonic() - killed_at <= TTL_S + 1.5  # blocked one short lease, not 120 s
        contender.release()
    finally:
        if process.poll() is None:
            process.kill()
        silent.close()

    runs = _runs(es, settings.index_prefix)
    assert [r["status"] for r in runs] == ["running"]      # the dead run's only trace so far
    fast = settings.model_copy(update={"harvest_run_lock_ttl_s": TTL_S})
    vendor = VendorConfig(name=VENDOR, base_url=f"http://127.0.0.1:{closed_port}/fhir", use_cases=["ps"],
                          timeout_s=2, max_attempts=1)
    election = LeaderElection(es, prefix=fast.index_prefix, ttl_s=10, holder="next-scheduler")
    assert election.tick()
    jobs = HarvestJobs(settings=fast, es=es, harvester=Harvester(es=es, settings=fast, vendors=[vendor]),
                       election=election)
    try:
        document = jobs.harvest(VENDOR, "incremental")
    finally:
        election.resign()
    assert document is not None
    by_id = {r["id"]: r for r in _runs(es, settings.index_prefix)}
    dead = by_id.pop(runs[0]["id"])
    assert dead["status"] == "interrupted" and dead["ended_at"]
    assert any("interrupted" in message for message in dead["errors"])
    assert [r["status"] for r in by_id.values()] == [document["status"]]   # the new run, recorded as usual
    # The vendor-health dashboard counts the killed run as a failed one (not as a success-less nothing).
    from datetime import UTC, datetime, timedelta

    from search_api.workflow.dashboards import harvest_runs_body

    body = harvest_runs_body(since=datetime.now(UTC) - timedelta(hours=1))
    body["query"]["bool"]["filter"].append({"term": {"vendor": VENDOR}})
    buckets = es.search(index=alias_name(settings.index_prefix, "harvest_runs"), body=body)["aggregations"]
    (bucket,) = buckets["vendor"]["buckets"]
    assert bucket["doc_count"] == 2
    assert bucket["failed"]["doc_count"] == 1 + (document["status"] == "failed")
