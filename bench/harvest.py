"""``sas bench harvest``: national-size directory, ~20 simulated vendors, harvest throughput and freshness.

1. A national directory under a bench prefix: ``places`` offers in real communes (population-weighted),
   ``practitioners`` of them connected to one of the 20 demo vendors (some in a CPTS), plus SOS places.
2. The vendor simulator in its own process (it shares the machine's cores with Elasticsearch and the
   harvester, as in the target set-up where vendors are remote, it must not share our interpreter).
3. Throughput: a cold full 7-day sweep of every vendor at once; slots indexed per second of wall time, and
   as a share of the floor measured right after it (``bench.harvest_floor``: Elasticsearch bulk-indexing the
   same documents with no harvester). Target ≥ 0.6.
3b. Steady state: a second full sweep with nothing changed at the vendors: harvester CPU µs per unchanged
   slot (target ≤ 15) and the writes Elasticsearch received (target: none).
4. Freshness: incremental harvests every ``interval_s``; meanwhile slots are taken at the vendors at
   random moments and a poller records when each disappears from what search shows
   (``visible_slot_filter``). Target: p95 ≤ interval + 5 s.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

import httpx
from elasticsearch import Elasticsearch, helpers

from bench.common import bench_indices, free_port, load_average, percentile, wait_http, write_result
from bench.harvest_floor import (
    counters_delta,
    cpu_delta,
    cpu_us_per_slot,
    measure_floor,
    over_floor,
    steady_state_figures,
    write_counters,
)
from connectors.directory.ids import luhn_key
from connectors.reference import load_communes
from connectors.vendors.config import VendorConfig
from indexer.harvest import Harvester
from indexer.harvest_workers import HarvestWorkers
from indexer.lifecycle import indices_behind, setup_indices
from mappings.registry import alias_name
from mappings.slots import visible_slot_filter
from sas_core.clock import utcnow
from sas_core.settings import Settings
from sas_core.territories import territory_for_departement
from sas_core.text import fold
from simulator.demo_vendors import DEMO_VENDOR_IDS

_FAMILY = ["MARTIN", "BERNARD", "THOMAS", "PETIT", "ROBERT", "RICHARD", "DURAND", "DUBOIS", "MOREAU", "LAURENT",
           "SIMON", "MICHEL", "LEFEBVRE", "LEROY", "ROUX", "DAVID", "BERTRAND", "MOREL", "FOURNIER", "GIRARD",
           "BONNET", "DUPONT", "LAMBERT", "FONTAINE", "ROUSSEAU", "VINCENT", "MULLER", "LEFEVRE", "FAURE", "ANDRE"]
_GIVEN = ["Marie", "Jean", "Claire", "Pierre", "Sophie", "Nicolas", "Camille", "Julien", "Isabelle", "Thomas",
          "Nathalie", "Antoine", "Céline", "François", "Émilie", "Laurent", "Aurélie", "Mathieu", "Hélène", "Olivier"]
_STREETS = ["rue de la République", "avenue Jean Jaurès", "rue Victor Hugo", "place de la Mairie", "rue Pasteur",
            "boulevard Gambetta", "rue du Général de Gaulle", "avenue de la Gare", "rue des Écoles", "rue Nationale"]
_SPECIALTIES = ["SM54"] * 8 + ["SM40", "SM15", "SM38", "SM26"]


@dataclass
class BenchConfig:
    places: int = 300_000
    practitioners: int = 12_000
    sos_places: int = 60
    vendors: int = 20
    interval_s: float = 30.0
    rounds: int = 3
    takes_per_round: int = 40
    parallel_vendors: int = 4
    #: Harvester worker processes (``indexer.harvest_workers``); 0: every run in this process (threads).
    worker_processes: int = 4
    #: Extra cold sweeps comparing translog durabilities, alternating ``async`` and ``request`` (the mapping's);
    #: each pair rebuilds the slots index empty. 0: no comparison.
    durability_rounds: int = 2
    #: After each cold sweep, the floor: the same documents bulk-indexed by Elasticsearch with no harvester.
    floor: bool = True
    #: After the first cold sweep, a full sweep with nothing changed at the vendors (its CPU and writes).
    steady_state: bool = True
    #: Freshness over a near tier: each vendor's run covers the next ``near_window_h`` hours (and slots
    #: are taken there) instead of the legacy 48 h incremental window. ``None``: the legacy window.
    near_window_h: float | None = None
    keep: bool = False
    output: Path = Path("bench/results/harvest.json")


def luhn_id(n: int) -> str:
    body = f"1{n:09d}"
    return "8" + body + luhn_key(body)


def generate_offers(*, settings: Settings, config: BenchConfig, vendor_names: list[str]):
    """The bench directory: practice places in real communes, some connected to vendors."""
    communes = [c for c in load_communes(settings.reference_data_dir) if c.postcodes]
    weights = [max(c.population or 0, 50) for c in communes]
    rng = random.Random(20240612)
    connected = set(rng.sample(range(config.places), config.practitioners))
    chosen = rng.choices(communes, weights=weights, k=config.places)
    for i, commune in enumerate(chosen):
        family, given = rng.choice(_FAMILY), rng.choice(_GIVEN)
        line = f"{rng.randint(1, 120)} {rng.choice(_STREETS)}"
        vendor = vendor_names[i % len(vendor_names)] if i in connected else None
        cpts = rng.random() < 0.1
        dep = commune.departement
        yield {
            "id": f"bench-ps-{i}", "kind": "ps", "national_id": luhn_id(i), "national_id_type": "rpps",
            "last_name": family, "first_name": given, "name": f"{given} {family}",
            "name_folded": fold(f"{given} {family}"),
            "specialties": [rng.choice(_SPECIALTIES)],
            "address": {"line": line, "postcode": commune.postcodes[0], "city": commune.name,
                        "city_folded": fold(commune.name), "insee": commune.insee},
            "departement": dep, "territory": territory_for_departement(dep),
            "location": {"lat": round(commune.lat + rng.uniform(-0.01, 0.01), 6),
                         "lon": round(commune.lon + rng.uniform(-0.01, 0.01), 6)},
            "geo_precision": "municipality", "phones": [f"+335{rng.randint(10000000, 99999999)}"],
            "sas": {"participates": vendor is not None, "vendor": vendor,
                    "cpts_finess": f"1{dep[:2]}00{i % 97:04d}" if cpts and vendor else None,
                    "cpts_name": f"CPTS de {commune.name}" if cpts and vendor else None},
            "source": "rpps",
        }
    sos_vendor = "sosplanning" if "sosplanning" in vendor_names else vendor_names[-1]
    for j in range(config.sos_places):
        commune = rng.choices(communes, weights=weights, k=1)[0]
        siret = f"{34173748400000 + (j // 3) * 10:014d}"    # the directory's bare 14-digit SIRET
        dep = commune.departement
        yield {
            "id": f"bench-sos-{j}", "kind": "sos", "name": f"Centre de consultation SOS {commune.name}",
            "name_folded": fold(f"centre de consultation sos {commune.name}"),
            "address": {"line": f"{rng.randint(1, 80)} {rng.choice(_STREETS)}", "postcode": commune.postcodes[0],
                        "city": commune.name, "city_folded": fold(commune.name), "insee": commune.insee},
            "departement": dep, "territory": territory_for_departement(dep),
            "location": {"lat": commune.lat, "lon": commune.lon}, "phones": ["+33820332424"],
            "sos": {"association_siret": siret, "association_name": f"SOS Médecins {j // 3}"},
            "sas": {"participates": True, "vendor": sos_vendor}, "source": "finess",
        }


def _simulator_process(es_url: str, prefix: str, port: int) -> None:
    """Child process: rosters from the bench offers, every agenda built, then serve until terminated."""
    from simulator.app import Simulator
    from simulator.roster import load_rosters
    from simulator.server import serve

    es = Elasticsearch(es_url, request_timeout=120)
    rosters = load_rosters(es, prefix=prefix)
    # Every agenda built ahead and kept: the measured sweep must not pay for the simulator's agendas.
    simulator = Simulator(rosters, public_url=f"http://127.0.0.1:{port}", taken_share=0.0,
                          max_agendas_per_vendor=None)
    for vendor in simulator.vendors.values():
        for key in list(vendor.roster.practitioners) + list(vendor.roster.associations):
            simulator.agenda(vendor, key)
    # Serving only once the agendas exist: the health check answering means ready.
    serve(simulator, host="127.0.0.1", port=port, log_level="error")


def _cpu_seconds(pids: list[int | None]) -> float | None:
    """User + system CPU seconds used so far by processes ``pids`` (Linux ``/proc``)."""
    total = 0.0
    for pid in pids:
        if pid is None:
            return None
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return None
    return total


def _es_pid(settings: Settings) -> int | None:
    try:
        from sas_core.local_es import _read_pid

        return _read_pid(settings)
    except Exception:  # noqa: BLE001 - an external cluster: no CPU figure
        return None


def _load_offers(es: Elasticsearch, *, settings: Settings, prefix: str, config: BenchConfig,
                 vendor_names: list[str], log) -> int:
    started = time.perf_counter()
    offers_alias = alias_name(prefix, "offers")
    actions = ({"_index": offers_alias, "_id": o["id"], "_source": o}
               for o in generate_offers(settings=settings, config=config, vendor_names=vendor_names))
    loaded = sum(ok for ok, _ in helpers.parallel_bulk(es, actions, chunk_size=5000, thread_count=2))
    es.indices.refresh(index=offers_alias)
    log(f"directory: {loaded} offers in {time.perf_counter() - started:.1f}s")
    return loaded


def _harvest_and_measure(es: Elasticsearch, *, settings: Settings, bench_settings: Settings, config: BenchConfig,
                         vendor_names: list[str], port: int, simulator_pid: int | None, log) -> dict:
    """The harvester (worker processes or threads) against the simulator on ``port``: the measured figures."""
    vendors = [VendorConfig(name=name, base_url=f"http://127.0.0.1:{port}/{name}/fhir",
                            use_cases=["ps", "cpts", "sos"], concurrency=6, rate_limit_per_s=None, timeout_s=30)
               for name in vendor_names]
    workers = None
    harvester: Harvester | HarvestWorkers
    if config.worker_processes:
        workers = harvester = HarvestWorkers(settings=bench_settings, processes=config.worker_processes,
                                             vendors=vendors).start()
    else:
        harvester = Harvester(es=es, settings=bench_settings, vendors=vendors)
    pids: dict[str, list[int | None]] = {"elasticsearch": [_es_pid(settings)], "simulator": [simulator_pid],
                                         "harvester": [os.getpid(), *(workers.pids() if workers else [])]}
    try:
        return _measure(es, harvester, bench_settings, vendors, port, config, log, pids)
    finally:
        if workers is not None:
            workers.close()


def run_bench(*, settings: Settings, config: BenchConfig, log=print) -> dict:
    prefix = f"{settings.index_prefix}-bench"
    bench_settings = settings.model_copy(update={"index_prefix": prefix})
    vendor_names = list(DEMO_VENDOR_IDS[:config.vendors])
    with bench_indices(settings, prefix=prefix, keep=config.keep) as es:
        loaded = _load_offers(es, settings=settings, prefix=prefix, config=config, vendor_names=vendor_names, log=log)
        port = free_port()
        # Its own interpreter: in the target set-up vendors are remote, they must not share the harvester's.
        simulator = multiprocessing.get_context("spawn").Process(
            target=_simulator_process, args=(settings.es_url, prefix, port), daemon=True)
        simulator.start()
        try:
            wait_http(f"http://127.0.0.1:{port}/_admin/healthz", timeout_s=600, exit_code=lambda: simulator.exitcode)
            result = _harvest_and_measure(es, settings=settings, bench_settings=bench_settings, config=config,
                                          vendor_names=vendor_names, port=port, simulator_pid=simulator.pid, log=log)
        finally:
            simulator.terminate()
            simulator.join(10)
    result.update({"places": loaded, "practitioners_connected": config.practitioners, "vendors": len(vendor_names),
                   "harvester_processes": config.worker_processes or 1, "parallel_vendors": config.parallel_vendors,
                   "cpu_count": os.cpu_count(), "measured_at": utcnow().isoformat(timespec="seconds")})
    write_result(result, config.output)
    return result


def _run_all(harvester: Harvester | HarvestWorkers, vendors: list[VendorConfig], mode: Literal["full", "incremental"],
             parallel: int) -> list[dict]:
    with ThreadPoolExecutor(parallel) as pool:
        return list(pool.map(lambda v: harvester.run(v, mode=mode), vendors))


def _full_sweep(es: Elasticsearch, harvester: Harvester | HarvestWorkers, vendors: list[VendorConfig],
                config: BenchConfig, slots_alias: str) -> tuple[list[dict], float]:
    """Every vendor's full 7-day run, then one refresh: the run documents and the wall-clock seconds."""
    began = time.perf_counter()
    runs = _run_all(harvester, vendors, "full", config.parallel_vendors)
    es.indices.refresh(index=slots_alias)
    return runs, time.perf_counter() - began


def _cold_sweep(es: Elasticsearch, harvester: Harvester | HarvestWorkers, settings: Settings,
                vendors: list[VendorConfig], config: BenchConfig, *, translog: dict) -> float:
    """Slots per second of a cold full sweep into a slots index rebuilt empty with ``translog`` settings."""
    slots_alias = alias_name(settings.index_prefix, "slots")
    for index in indices_behind(es, slots_alias):
        es.indices.delete(index=index)
    setup_indices(es, prefix=settings.index_prefix, overrides={"slots": {"translog": translog}})
    runs, seconds = _full_sweep(es, harvester, vendors, config, slots_alias)
    failed = [r["vendor"] for r in runs if r["status"] != "success"]
    if failed:
        raise RuntimeError(f"durability comparison: sweep not successful for {failed}")
    return sum(r["upserted"] for r in runs) / seconds


def _compare_durabilities(es: Elasticsearch, harvester: Harvester | HarvestWorkers, settings: Settings,
                          vendors: list[VendorConfig], config: BenchConfig, log,
                          pids: dict[str, list[int | None]]) -> dict:
    """What syncing the translog before answering (``request``, the mapping's) costs a cold sweep, against
    ``async`` every 5 s (the setting before slots v4): alternating sweeps in this one run, so both see the
    same machine load. The last sweep is ``request``: the freshness phase runs on the real setting.
    Each sweep is followed by its floor (same documents, same translog, no harvester): sweep / floor pairs."""
    rates: dict[str, list[float]] = {"async": [], "request": []}
    floors: dict[str, list[float]] = {"async": [], "request": []}
    ratios: dict[str, list[float]] = {"async": [], "request": []}
    for _ in range(config.durability_rounds):
        for mode, translog in (("async", {"durability": "async", "sync_interval": "5s"}),
                               ("request", {"durability": "request"})):
            rates[mode].append(_cold_sweep(es, harvester, settings, vendors, config, translog=translog))
            log(f"cold sweep, translog {mode}: {rates[mode][-1]:,.0f} slots/s")
            floor = _floor(es, settings, config, log, pids)
            if floor is not None:
                floors[mode].append(floor["slots_per_s"])
                ratios[mode].append(over_floor(rates[mode][-1], floor) or 0.0)
    medians = {mode: statistics.median(values) for mode, values in rates.items()}
    cost = 1 - medians["request"] / medians["async"]
    log(f"durability: request {medians['request']:,.0f} vs async {medians['async']:,.0f} slots/s "
        f"(median of {config.durability_rounds}); cost {cost:.1%} (target ≤ 10 %)")
    return {"rounds": config.durability_rounds,
            "slots_per_s": {mode: [round(v, 1) for v in values] for mode, values in rates.items()},
            "median_slots_per_s": {mode: round(v, 1) for mode, v in medians.items()},
            "request_cost_share": round(cost, 4), "target_cost_share": 0.10,
            "floor_slots_per_s": floors if config.floor else None,
            "harvest_over_floor": ratios if config.floor else None,
            "median_harvest_over_floor": {mode: round(statistics.median(values), 3) for mode, values in ratios.items()}
            if config.floor else None}


def _cpu_sampler(pids: dict[str, list[int | None]]):
    """CPU seconds used so far, by process group (``None`` for a group whose processes cannot be read)."""
    return lambda: {name: _cpu_seconds(group) for name, group in pids.items()}


def _floor(es: Elasticsearch, settings: Settings, config: BenchConfig, log,
           pids: dict[str, list[int | None]]) -> dict | None:
    """The floor of the sweep that just ended (``None`` when not asked for): its documents bulk-indexed by
    Elasticsearch alone, with the harvester's bulk chunk and threads, one writer per vendor harvested at once."""
    if not config.floor:
        return None
    return measure_floor(es, slots_alias=alias_name(settings.index_prefix, "slots"),
                         floor_index=f"{settings.index_prefix}-floor-slots", chunk=settings.harvest_bulk_chunk,
                         threads=settings.harvest_bulk_threads, lanes=config.parallel_vendors,
                         cpu=_cpu_sampler(pids), log=log)


def _taken_at_vendors(port: int) -> int:
    """Slots taken so far at the simulated vendors (their agendas' only change: the steady state needs none)."""
    vendors = httpx.get(f"http://127.0.0.1:{port}/_admin/vendors", timeout=30).json()
    return sum(vendor["taken"] for vendor in vendors)


#: Measured incremental polls of the steady state (after the one that learns the answers).
STEADY_POLLS = 3


def _steady_state(es: Elasticsearch, harvester: Harvester | HarvestWorkers, settings: Settings,
                  vendors: list[VendorConfig], port: int, config: BenchConfig, log,
                  pids: dict[str, list[int | None]], *, cold_runs: list[dict]) -> dict:
    """Sweeps right after the cold one, nothing changed at the vendors: what they cost per unchanged slot
    (every harvester process, Elasticsearch) and every write Elasticsearch received meanwhile.

    First a full sweep (it decodes and maps every answer: a full run also compares each document with
    the directory), then the polls the freshness tiers repeat all day: incremental runs (the next 48 h),
    one that learns the answers, then ``STEADY_POLLS`` measured, their median the figure the target is
    about. Each vendor's run is at the instant of its cold run (``now``, hence the same window): the
    minutes since then would otherwise move the window's edges, and the slots that started, ended or came
    into the window meanwhile would count as changes — they are the clock's, not the vendors'."""
    instants = {run["vendor"]: datetime.fromisoformat(run["started_at"]) for run in cold_runs if run.get("started_at")}
    cold_slots = sum(run["upserted"] for run in cold_runs)

    def sweep(mode: Literal["full", "incremental"]) -> dict:
        return _unchanged_sweep(es, harvester, settings, vendors, port, config, pids, mode=mode,
                                instants=instants, cold_slots=cold_slots)

    figures = sweep("full")
    log(f"steady state, full sweep: {figures['unchanged']} of {figures['slots']} slots unchanged in "
        f"{figures['seconds']:.1f}s, harvester {figures['harvester_cpu_us_per_slot']} µs and Elasticsearch "
        f"{figures['elasticsearch_cpu_us_per_slot']} µs of CPU per unchanged slot; "
        f"writes {figures['writes'] or 'none'}")
    learning = sweep("incremental")
    polls = [sweep("incremental") for _ in range(STEADY_POLLS)]
    per_slot = [poll["harvester_cpu_us_per_slot"] for poll in polls if poll["harvester_cpu_us_per_slot"] is not None]
    es_per_slot = [poll["elasticsearch_cpu_us_per_slot"] for poll in polls
                   if poll["elasticsearch_cpu_us_per_slot"] is not None]
    figures["incremental_polls"] = {
        "learning_poll": learning, "polls": polls,
        "harvester_cpu_us_per_slot": statistics.median(per_slot) if per_slot else None,
        "harvester_cpu_us_per_slot_each": per_slot,
        "elasticsearch_cpu_us_per_slot": statistics.median(es_per_slot) if es_per_slot else None,
        "data_writes": sum(poll["data_writes"] for poll in polls),
        "target_harvester_cpu_us_per_slot": 15, "target_data_writes": 0,
    }
    log(f"steady state, incremental polls: {polls[-1]['unchanged'] if polls else 0} slots unchanged per poll, "
        f"harvester {figures['incremental_polls']['harvester_cpu_us_per_slot']} µs of CPU per unchanged slot "
        f"(median of {per_slot}; target ≤ 15 µs), data writes {figures['incremental_polls']['data_writes']}")
    return figures


def _unchanged_sweep(es: Elasticsearch, harvester: Harvester | HarvestWorkers, settings: Settings,
                     vendors: list[VendorConfig], port: int, config: BenchConfig,
                     pids: dict[str, list[int | None]], *, mode: Literal["full", "incremental"],
                     instants: dict[str, datetime], cold_slots: int) -> dict:
    """One run of every vendor in ``mode`` at its cold instant, nothing changed at the vendors: its figures."""
    cpu = _cpu_sampler(pids)
    taken_before = _taken_at_vendors(port)
    counters_before = write_counters(es, prefix=settings.index_prefix)
    cpu_before, load_before = cpu(), load_average()
    began = time.perf_counter()
    with ThreadPoolExecutor(config.parallel_vendors) as pool:
        runs = list(pool.map(lambda v: harvester.run(v, mode=mode, now=instants.get(v.name)), vendors))
    es.indices.refresh(index=alias_name(settings.index_prefix, "slots"))
    seconds = time.perf_counter() - began
    cpu_s = cpu_delta(cpu_before, cpu())
    load_after = load_average()
    writes = counters_delta(counters_before, write_counters(es, prefix=settings.index_prefix))
    taken_after = _taken_at_vendors(port)
    if taken_after != taken_before:
        raise RuntimeError(f"steady state: {taken_after - taken_before} slots taken at the vendors during the "
                           f"{mode} sweep, the agendas changed")
    figures = steady_state_figures(runs=runs, seconds=seconds, cpu_s=cpu_s, writes=writes,
                                   taken=(taken_before, taken_after), cold_slots=cold_slots,
                                   load=[load_before, load_after])
    figures["mode"] = mode
    # Runs whose window was the cold sweep's (a failed worker's document has no instant).
    figures["vendor_runs_at_cold_instant"] = sum(
        1 for run in runs if run.get("started_at") and datetime.fromisoformat(run["started_at"]) == instants.get(
            run["vendor"]))
    return figures


def _cold_sweep_figures(es: Elasticsearch, harvester: Harvester | HarvestWorkers, settings: Settings,
                        vendors: list[VendorConfig], config: BenchConfig, log,
                        pids: dict[str, list[int | None]]) -> tuple[dict, list[dict]]:
    """Throughput: a cold full sweep of every vendor at once, with the CPU each process spent on it, then
    its floor (the same documents bulk-indexed by Elasticsearch alone) in the same run. Also the runs."""
    slots_alias = alias_name(settings.index_prefix, "slots")
    sample = _cpu_sampler(pids)
    cpu_before = sample()
    load_before, loads_before = os.getloadavg()[0], load_average()
    runs, seconds = _full_sweep(es, harvester, vendors, config, slots_alias)
    cpu_after = sample()
    cpu = {name: round(after - before, 1) for name, before in cpu_before.items()
           if before is not None and (after := cpu_after[name]) is not None}
    load_after, loads_after = os.getloadavg()[0], load_average()
    slots = sum(r["upserted"] for r in runs)
    indexed = es.count(index=slots_alias)["count"]
    failed = [r["vendor"] for r in runs if r["status"] != "success"]
    log(f"cold full sweep: {slots} slots ({indexed} in the index) in {seconds:.1f}s = {slots / seconds:,.0f} slots/s"
        + (f"; not successful: {failed}" if failed else ""))
    log(f"CPU seconds during the sweep: {cpu}")
    return {
        "slots": slots, "seconds": round(seconds, 2), "slots_per_s": round(slots / seconds, 1),
        "slots_in_index": indexed, "full_sweep_failed_vendors": failed, "full_sweep_cpu_s": cpu,
        # CPU microseconds per slot, by process: what the machine must supply, whatever else runs on it.
        "full_sweep_cpu_us_per_slot": cpu_us_per_slot(cpu, slots),
        # Other work on the machine during the sweep (1-minute load average before / after it).
        "load_average_1m": [round(load_before, 2), round(load_after, 2)],
        "load_average": [loads_before, loads_after],
    }, runs


class _Freshness:
    """Freshness: incremental harvests every interval while slots are taken at the vendors at random moments;
    a poller records when each taken slot is gone from what search shows (``visible_slot_filter``)."""

    def __init__(self, es: Elasticsearch, harvester: Harvester | HarvestWorkers, settings: Settings,
                 vendors: list[VendorConfig], port: int, config: BenchConfig) -> None:
        self.es, self.harvester, self.settings, self.vendors, self.port, self.config = (
            es, harvester, settings, vendors, port, config)
        self.slots_alias = alias_name(settings.index_prefix, "slots")
        self.pending: dict[str, float] = {}          # taken slot id → when the vendor took it
        self.delays: list[float] = []
        self.durations: list[float] = []             # of each incremental vendor run
        self.incremental_runs: list[dict] = []
        self.lock = threading.Lock()
        self.poll_stop = threading.Event()
        self.harvest_stop = threading.Event()

    def poll(self) -> None:
        while not self.poll_stop.is_set():
            with self.lock:
                ids = list(self.pending)
            if ids:
                query = {"bool": {"filter": [{"ids": {"values": ids}}, *visible_slot_filter(
                    now=utcnow(), stale_after_s=self.settings.stale_after_s)]}}
                hits = self.es.search(index=self.slots_alias, query=query, size=len(ids), source=False)["hits"]["hits"]
                seen = {h["_id"] for h in hits}
                now = time.time()
                with self.lock:
                    for slot_id in ids:
                        if slot_id not in seen:
                            self.delays.append(now - self.pending.pop(slot_id))
            self.poll_stop.wait(0.25)

    def take(self, round_rng: random.Random) -> None:
        vendor = round_rng.choice(self.vendors).name
        answer = httpx.post(f"http://127.0.0.1:{self.port}/_admin/vendors/{vendor}/take",
                            json={"count": 1, "within_h": self.config.near_window_h or 47,
                                  "seed": round_rng.random()}, timeout=30).json()
        with self.lock:
            for slot_id in answer["taken"]:
                self.pending[f"{vendor}:{slot_id}"] = answer["at"]

    def vendor_loop(self, pool: ThreadPoolExecutor, vendor: VendorConfig, offset: float) -> None:
        if self.harvest_stop.wait(offset):
            return
        while not self.harvest_stop.is_set():
            began_run = time.time()
            near = self.config.near_window_h
            start = utcnow() if near else None
            end = start + timedelta(hours=near) if start is not None and near else None
            document = pool.submit(self.harvester.run, vendor, mode="incremental", start=start, end=end).result()
            with self.lock:
                self.incremental_runs.append(document)
                self.durations.append(time.time() - began_run)
            self.harvest_stop.wait(max(0.0, began_run + self.config.interval_s - time.time()))

    def take_slots(self) -> None:
        """``takes_per_round`` slots per interval over ``rounds`` intervals, at random moments."""
        config = self.config
        rng = random.Random(5)
        start_takes = time.time() + config.interval_s      # first interval: every vendor has run once
        deadline = start_takes + config.rounds * config.interval_s
        takes_due = sorted(rng.uniform(start_takes, deadline) for _ in range(config.takes_per_round * config.rounds))
        while takes_due:
            if takes_due[0] <= time.time():
                takes_due.pop(0)
                self.take(rng)
            else:
                time.sleep(min(0.05, max(0.0, takes_due[0] - time.time())))

    def wait_for_pending(self) -> None:
        """The last taken slots: one more interval plus a margin."""
        give_up = time.time() + self.config.interval_s * 2 + 30
        while time.time() < give_up:
            with self.lock:
                if not self.pending:
                    return
            time.sleep(0.2)

    def run(self) -> int:
        """Measure; the number of taken slots never gone."""
        poller = threading.Thread(target=self.poll, daemon=True)
        poller.start()
        # Like the scheduler: every vendor on its own interval (staggered starts), at most
        # ``parallel_vendors`` harvests at once, a late run starting as soon as possible (coalesced).
        pool = ThreadPoolExecutor(self.config.parallel_vendors)
        loops = [threading.Thread(target=self.vendor_loop,
                                  args=(pool, v, i * self.config.interval_s / len(self.vendors)), daemon=True)
                 for i, v in enumerate(self.vendors)]
        for loop in loops:
            loop.start()
        self.take_slots()
        self.wait_for_pending()
        self.harvest_stop.set()
        for loop in loops:
            loop.join(600)
        pool.shutdown(wait=True)
        self.poll_stop.set()
        poller.join(5)
        with self.lock:
            return len(self.pending)

    def figures(self, missing: int, log) -> dict:
        delays, passes, interval_s = self.delays, self.durations, self.config.interval_s
        p50, p95 = (percentile(delays, p, method="nearest") for p in (50, 95))
        log(f"freshness: {len(delays)} taken slots, p50 {p50:.1f}s, p95 {p95:.1f}s, "
            f"max {max(delays) if delays else float('nan'):.1f}s (interval {interval_s:g}s; "
            f"incremental vendor run {statistics.mean(passes) if passes else float('nan'):.1f}s on average); "
            f"never gone: {missing}")
        return {
            "taken_to_gone_p95_s": round(p95, 2), "taken_to_gone_p50_s": round(p50, 2),
            "taken_to_gone_max_s": round(max(delays), 2) if delays else None, "taken_slots": len(delays),
            "taken_never_gone": missing, "harvest_interval_s": interval_s,
            "freshness_window_h": self.config.near_window_h or 48,
            "target_taken_to_gone_p95_s": interval_s + 5, "target_slots_per_s": 20000,
            "incremental_vendor_run_s_mean": round(statistics.mean(passes), 2) if passes else None,
            "incremental_vendor_run_s_max": round(max(passes), 2) if passes else None,
            "incremental_unchanged_mean": round(statistics.mean(r["unchanged"] for r in self.incremental_runs), 1)
            if self.incremental_runs else None,
        }


def _measure(es: Elasticsearch, harvester: Harvester | HarvestWorkers, settings: Settings,
             vendors: list[VendorConfig], port: int, config: BenchConfig, log,
             pids: dict[str, list[int | None]]) -> dict:
    result, cold_runs = _cold_sweep_figures(es, harvester, settings, vendors, config, log, pids)
    floor = _floor(es, settings, config, log, pids)
    ratio = over_floor(result["slots_per_s"], floor)
    if ratio is not None:
        log(f"harvest over floor: {ratio:.2f} (target ≥ 0.6)")
    result.update({
        "floor_slots_per_s": floor["slots_per_s"] if floor else None, "harvest_over_floor": ratio,
        "target_harvest_over_floor": 0.6, "floor": floor,
        # CPU µs per slot of each process group, in the sweep and in its floor (the harvester group writes
        # the floor's documents: its figure there is the bulk writer's own cost).
        "cpu_us_per_slot": {"sweep": result["full_sweep_cpu_us_per_slot"],
                            "floor": floor["cpu_us_per_slot"] if floor else None},
    })
    result["steady_state"] = (_steady_state(es, harvester, settings, vendors, port, config, log, pids,
                                            cold_runs=cold_runs) if config.steady_state else None)
    durability = (_compare_durabilities(es, harvester, settings, vendors, config, log, pids)
                  if config.durability_rounds else None)
    freshness = _Freshness(es, harvester, settings, vendors, port, config)
    missing = freshness.run()
    result.update(freshness.figures(missing, log))
    result["durability_comparison"] = durability
    result.update(_all_pairs(ratio, durability, log))
    return result


def _all_pairs(first: float | None, durability: dict | None, log) -> dict:
    """Every sweep / floor ratio of the run in the order measured (the cold sweep's, then the durability
    comparison's) and their median: one pair moves by ±0.06 from run to run, and the first sweep after the
    node started runs on a cold JVM (2026-12-03: 0.48, then 0.56 three minutes later)."""
    pairs = [first] if first is not None else []
    by_mode = (durability or {}).get("harvest_over_floor") or {}
    for async_ratio, request_ratio in zip(by_mode.get("async", []), by_mode.get("request", []), strict=True):
        pairs += [async_ratio, request_ratio]
    if not pairs:
        return {}
    rounded, median = [round(p, 3) for p in pairs], round(statistics.median(pairs), 3)
    log(f"harvest over floor, every pair of the run: {rounded}; median {median:.3f} (target ≥ 0.6)")
    return {"harvest_over_floor_pairs": rounded, "median_harvest_over_floor": median}
