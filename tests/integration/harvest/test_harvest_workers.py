"""Harvests in worker processes (``indexer.harvest_workers``): the same runs as in-process, each vendor
pinned to one worker, figures recorded in the calling process, a dead worker replaced.

The workers are separate interpreters with their own (unguarded) Elasticsearch client built from the
session's settings: they write only under the session's random prefix, like every harvest here.
"""

from __future__ import annotations

import os
import signal

from indexer.harvest import Harvester
from indexer.harvest_workers import HarvestWorkers
from sas_core.metrics import HARVEST_RUNS
from tests.integration.harvest.conftest import town_offers, write_offers
from tests.integration.harvest.test_harvest_semantics import vendor_config, vendor_slots


def test_workers_harvest_like_the_in_process_harvester(es, indices, settings, run_simulator):
    names = ["wrk-alpha", "wrk-beta"]
    offers = town_offers(names[0], 12, start=7100) + town_offers(names[1], 9, start=7200)
    write_offers(es, settings, offers)
    sim = run_simulator(offers)
    vendors = [vendor_config(name, sim.port) for name in names]
    before = HARVEST_RUNS.labels(names[0], "success")._value.get()

    with HarvestWorkers(settings=settings, processes=2, vendors=vendors) as workers:
        runs = [workers.run(name, mode="full") for name in names]
        # One vendor per worker, and a vendor's next run goes to the same worker (its breaker lives there).
        pids = workers.pids()
        assert len(set(pids)) == 2
        again = workers.run(names[0], mode="full")
        assert workers.pids() == pids

    assert [r["status"] for r in runs] == ["success", "success"]
    for name, run in zip(names, runs, strict=True):
        slots = vendor_slots(es, settings, name)
        assert run["vendor"] == name and len(slots) == run["upserted"] > 20
        assert {s["offer_id"] for s in slots.values()} <= {o["id"] for o in offers}
    # Nothing changed at the vendor: the second run writes nothing, as in process.
    assert again["status"] == "success" and again["upserted"] == 0 and again["unchanged"] == runs[0]["upserted"]
    # The run figures are counted where /metrics is served (this process), not only in the worker.
    assert HARVEST_RUNS.labels(names[0], "success")._value.get() == before + 2

    # The in-process harvester finds the workers' slots unchanged: the same documents were written.
    check = Harvester(es=es, settings=settings, vendors=vendors).run(names[1], mode="full")
    assert check["upserted"] == 0 and check["unchanged"] == runs[1]["upserted"]


def test_a_dead_worker_fails_its_run_and_is_replaced(es, indices, settings, run_simulator):
    name = "wrk-phoenix"
    offers = town_offers(name, 5, start=7300)
    write_offers(es, settings, offers)
    sim = run_simulator(offers)
    with HarvestWorkers(settings=settings, processes=1, vendors=[vendor_config(name, sim.port)]) as workers:
        workers.start()
        (pid,) = workers.pids()
        os.kill(pid, signal.SIGKILL)
        failed = workers.run(name, mode="full")
        assert failed["status"] == "failed" and "worker process died" in failed["errors"][0]
        recovered = workers.run(name, mode="full")
        assert recovered["status"] == "success" and recovered["upserted"] > 0
        assert workers.pids() and workers.pids() != [pid]


def test_scheduler_harvests_through_workers_when_configured(es, indices, settings):
    from indexer.scheduler import HarvestJobs

    configured = settings.model_copy(update={"harvest_worker_processes": 3})
    jobs = HarvestJobs(settings=configured, es=es)
    assert isinstance(jobs.harvester, HarvestWorkers) and jobs.harvester.processes == 3
    jobs.close()   # what the scheduler's shutdown listener calls: no worker left behind
    assert jobs.harvester.pids() == []
    assert isinstance(HarvestJobs(settings=settings, es=es).harvester, Harvester)


def test_workers_end_when_the_process_that_started_them_is_killed(settings, tmp_path):
    """A scheduler killed with ``kill -9`` takes its harvest workers with it: an orphan would keep harvesting
    its vendor after another host took the vendor's lease."""
    import subprocess
    import sys
    import time

    script = tmp_path / "parent.py"
    script.write_text(
        "import sys, time\n"
        "from indexer.harvest_workers import HarvestWorkers\n"
        "from sas_core.settings import Settings\n"
        "if __name__ == '__main__':\n"
        "    workers = HarvestWorkers(settings=Settings(), processes=2, vendors=[]).start()\n"
        "    print(' '.join(map(str, workers.pids())), flush=True)\n"
        "    time.sleep(120)\n", encoding="utf-8")
    env = {**os.environ, "SAS_INDEX_PREFIX": settings.index_prefix, "SAS_ES_URL": settings.es_url}
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        line = parent.stdout.readline() if parent.stdout else ""
        pids = [int(p) for p in line.split()]
        assert len(pids) == 2 and all(_alive(pid) for pid in pids)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [pid for pid in pids if _alive(pid)], "harvest workers outlived their parent"
    finally:
        parent.kill()
        for pid in pids if "pids" in locals() else []:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    """``pid`` runs (a zombie waiting for its reaper counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False
