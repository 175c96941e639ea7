"""Steady-state harvest cost: CPU of the harvester per unchanged slot, and Elasticsearch writes, for
re-sweeps where nothing changed at the vendors (the median of several, once Elasticsearch merges nothing),
after a cold full sweep and a first re-sweep (small size: a decision aid, not the national bench).

    .venv/bin/python -m bench.steady_state [--practitioners 600] [--steady-sweeps 9] [--profile]
                                           [--mode full|incremental]

The simulator runs in its own process, so that ``time.process_time`` of this one is the harvester's own
CPU (its HTTP client, JSON decoding, mapping, comparison, bulk writer). Writes are read from the slots
index's indexing statistics (index, delete and noop-update operations), not from the harvester's counts.
Writes JSON under ``bench/results/``.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import multiprocessing
import pstats
import statistics
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

from elasticsearch import Elasticsearch

from bench.common import free_port, wait_http
from connectors.directory.ids import luhn_key
from connectors.vendors.config import VendorConfig
from indexer.harvest import Harvester
from indexer.lifecycle import drop_prefix, setup_indices
from mappings.common import GeoPoint
from mappings.offers import OfferAddress, OfferDoc, OfferSas
from mappings.registry import alias_name
from sas_core.es import make_client
from sas_core.settings import Settings
from sas_core.text import fold

VENDORS = ("steady-a", "steady-b", "steady-c")
RESULTS = Path(__file__).resolve().parent / "results"


def _national_id(n: int) -> str:
    """A valid ``8`` + RPPS national id (its Luhn key computed)."""
    body = f"1{n:09d}"
    return "8" + body + luhn_key(body)


def _town_offers(vendor: str, count: int, *, start: int) -> list[dict]:
    """``count`` practitioners of ``vendor`` in Agen (47), one place each; every third in a CPTS."""
    offers = []
    for i in range(count):
        line, name = f"{i + 1} rue Montesquieu", "Claire MARTIN"
        cpts = ("470000011", "CPTS du Grand Agen") if i % 3 == 0 else (None, None)
        offers.append(OfferDoc(
            id=f"{vendor}-{i}", kind="ps", national_id=_national_id(start + i), national_id_type="rpps",
            last_name="MARTIN", first_name="Claire", name=name, name_folded=fold(name), specialties=["SM54"],
            address=OfferAddress(line=line, postcode="47000", city="Agen", city_folded=fold("Agen"),
                                 text=f"{line}, 47000 Agen"),
            departement="47", territory="SAS-47", location=GeoPoint(lat=44.2033 + i / 10000, lon=0.6163),
            phones=["+33553000000"],
            sas=OfferSas(participates=True, vendor=vendor, cpts_finess=cpts[0], cpts_name=cpts[1]),
            source="rpps",
        ).model_dump(mode="json"))
    return offers


def _offers(count: int) -> list[dict]:
    offers: list[dict] = []
    for n, vendor in enumerate(VENDORS):
        offers += _town_offers(vendor, count, start=10_000 * (n + 1))
    return offers


def _simulator(offers: list[dict], port: int) -> None:
    """Child process: every agenda built ahead, then serve until terminated."""
    from simulator.app import Simulator
    from simulator.roster import rosters_from_offers
    from simulator.server import serve

    simulator = Simulator(rosters_from_offers(offers), public_url=f"http://127.0.0.1:{port}", taken_share=0.0,
                          max_agendas_per_vendor=None)
    for vendor in simulator.vendors.values():
        for key in list(vendor.roster.practitioners) + list(vendor.roster.associations):
            simulator.agenda(vendor, key)
    serve(simulator, host="127.0.0.1", port=port, log_level="error")


def _writes(es: Elasticsearch, alias: str) -> dict[str, int]:
    indexing = es.indices.stats(index=alias, metric="indexing")["_all"]["primaries"]["indexing"]
    return {"index": indexing["index_total"], "delete": indexing["delete_total"],
            "noop_update": indexing["noop_update_total"]}


def _wait_for_quiet_merges(es: Elasticsearch, alias: str, *, timeout_s: float = 120.0) -> None:
    """Until Elasticsearch merges none of the cold sweep's segments: the steady state has no writes, so
    what is measured is the harvester, not the tail of the cold sweep's merges competing for the cores."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        merges = es.indices.stats(index=alias, metric="merge")["_all"]["total"]["merges"]
        if merges["current"] == 0:
            return
        time.sleep(0.5)
    raise RuntimeError(f"merges of {alias} still running after {timeout_s:.0f} s")


def _sweep(harvester: Harvester, mode: str, now: datetime) -> tuple[float, list[dict]]:
    started = time.process_time()
    documents = [harvester.run(name, mode=mode, now=now) for name in VENDORS]   # type: ignore[arg-type]
    return time.process_time() - started, documents


def _copy_ab(harvester: Harvester, es: Elasticsearch, settings: Settings, vendors: list[VendorConfig], mode: str,
             now: datetime, sweeps: int) -> dict:
    """The steady sweeps with and without the harvester's copy of what it indexed, in one process:
    A (copy) ×(1 + n), B (no copy) ×n, A ×(1 + n), each block's first A sweep not counted (B's runs are
    another harvester's, which makes A read its windows again once). Harvester and Elasticsearch CPU per
    unchanged slot, medians; Elasticsearch's from its process (nothing else should run meanwhile)."""
    from bench.harvest import _cpu_seconds, _es_pid

    without = Harvester(es=es, settings=settings.model_copy(update={"harvest_indexed_copy": False}), vendors=vendors)
    _sweep(without, mode, now)   # learns its steady answers
    es_pid = _es_pid(settings)
    figures: dict[str, dict[str, list]] = {"copy": {}, "no_copy": {}}

    def measured(name: str, who: Harvester) -> None:
        es_before = _cpu_seconds([es_pid])
        cpu, documents = _sweep(who, mode, now)
        es_after = _cpu_seconds([es_pid])
        unchanged = max(sum(d["unchanged"] for d in documents), 1)
        block = figures[name]
        block.setdefault("harvester_us", []).append(round(1e6 * cpu / unchanged, 1))
        if es_before is not None and es_after is not None:
            block.setdefault("elasticsearch_us", []).append(round(1e6 * (es_after - es_before) / unchanged, 1))
        block.setdefault("indexed_read", []).append(sum(d["indexed_read"] for d in documents))
        block.setdefault("unchanged", []).append(unchanged)

    for block in ("copy", "no_copy", "copy"):
        who = harvester if block == "copy" else without
        if block == "copy":
            _sweep(who, mode, now)   # reads its windows again after the other harvester's runs
        for _ in range(sweeps):
            measured(block, who)
    return {name: {**values, **{f"median_{key}": statistics.median(values[key])
                                for key in ("harvester_us", "elasticsearch_us") if values.get(key)}}
            for name, values in figures.items()}


def run(*, practitioners: int, mode: str, profile: bool, steady_sweeps: int = 9, advance_s: float = 0.0,
        copy_ab: int = 0) -> dict:
    prefix = f"bss{uuid.uuid4().hex[:8]}"
    settings = Settings(index_prefix=prefix)
    # The client as the harvest workers build it (its serializer and HTTP node are part of the cost).
    es = make_client(settings, request_timeout=120)
    port = free_port()
    offers = _offers(practitioners)
    child = multiprocessing.get_context("spawn").Process(target=_simulator, args=(offers, port), daemon=True)
    try:
        setup_indices(es, prefix=prefix)
        from elasticsearch import helpers

        helpers.bulk(es, ({"_index": alias_name(prefix, "offers"), "_id": o["id"], "_source": o} for o in offers),
                     refresh=True)
        child.start()
        wait_http(f"http://127.0.0.1:{port}/_admin/healthz", timeout_s=300, exit_code=lambda: child.exitcode)
        vendors = [VendorConfig(name=name, base_url=f"http://127.0.0.1:{port}/{name}/fhir", use_cases=["ps", "cpts"],
                                timeout_s=30) for name in VENDORS]
        harvester = Harvester(es=es, settings=settings, vendors=vendors)
        now = datetime.now(timezone.utc)
        cold_cpu, cold = _sweep(harvester, "full", now)
        # The first re-read after the sweep decodes and maps every answer (and learns which changed
        # nothing); the steady state is the re-reads after it.
        first_cpu, first = _sweep(harvester, mode, now)
        alias = alias_name(prefix, "slots")
        es.indices.refresh(index=alias)
        _wait_for_quiet_merges(es, alias)
        before = _writes(es, alias)
        profiler = cProfile.Profile(time.process_time) if profile else None   # CPU, not waiting
        # Several steady sweeps, the median reported: one sweep of a few hundred practitioners is a
        # fraction of a second of CPU, and single sweeps of one run ranged from 10.6 to 19.2 µs per slot.
        sweeps: list[float] = []
        unchanged_each: list[int] = []
        for n in range(steady_sweeps):
            if profiler:
                profiler.enable()
            # ``advance_s``: each sweep that much later, as polls are (the window's edges move with the
            # clock); 0: every sweep at the cold instant (nothing at all changes).
            cpu, again = _sweep(harvester, mode, now + timedelta(seconds=advance_s * (n + 1)))
            if profiler:
                profiler.disable()
            sweeps.append(cpu)
            unchanged_each.append(sum(d["unchanged"] for d in again))
        per_slot = [1e6 * c / max(u, 1) for c, u in zip(sweeps, unchanged_each, strict=True)]
        cpu = statistics.median(sweeps)
        es.indices.refresh(index=alias)
        after = _writes(es, alias)
        unchanged = sum(d["unchanged"] for d in again)
        read = sum(d["read"] for d in again)
        cold_read = sum(d["read"] for d in cold)
        figures = {
            "mode": mode, "vendors": len(VENDORS), "practitioners_per_vendor": practitioners,
            "cold_read": cold_read, "cold_cpu_us_per_slot": round(1e6 * cold_cpu / max(cold_read, 1), 1),
            "first_resweep_cpu_us_per_slot": round(1e6 * first_cpu / max(sum(d["read"] for d in first), 1), 1),
            "read": read, "unchanged": unchanged,
            "upserted": sum(d["upserted"] for d in again), "deleted": sum(d["deleted"] for d in again),
            "steady_sweeps": steady_sweeps, "advance_s_per_sweep": advance_s, "cpu_s": round(cpu, 3),
            # Each sweep's CPU over its own unchanged slots (with ``advance_s`` they differ from sweep to sweep).
            "cpu_us_per_unchanged_slot": round(statistics.median(per_slot), 1),
            "cpu_us_per_unchanged_slot_each": [round(v, 1) for v in per_slot],
            "writes": {op: after[op] - before[op] for op in after},
            "profiled": profile,
        }
        if copy_ab:
            figures["copy_ab"] = _copy_ab(harvester, es, settings, vendors, mode, now, copy_ab)
        if profiler:
            out = io.StringIO()
            stats = pstats.Stats(profiler, stream=out)
            stats.sort_stats("tottime").print_stats(25)
            stats.sort_stats("cumulative").print_stats(r"indexer|connectors|httpx/_client|elasticsearch/helpers", 30)
            figures["profile_top"] = out.getvalue().splitlines()[:120]
        return figures
    finally:
        if child.is_alive():
            child.terminate()
            child.join(10)
        drop_prefix(es, prefix=prefix)
        es.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--practitioners", type=int, default=600, help="per vendor")
    parser.add_argument("--mode", choices=("full", "incremental"), default="full")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--advance-s", type=float, default=0.0,
                        help="each steady sweep this many seconds after the previous one (0: all at the cold instant)")
    parser.add_argument("--steady-sweeps", type=int, default=9, help="steady sweeps measured (median reported)")
    parser.add_argument("--label", default="")
    parser.add_argument("--copy-ab", type=int, default=0, metavar="N",
                        help="then N steady sweeps with the harvester's copy of what it indexed, N without, N with")
    args = parser.parse_args()
    if args.steady_sweeps < 1:
        parser.error("--steady-sweeps must be at least 1")
    figures = run(practitioners=args.practitioners, mode=args.mode, profile=args.profile,
                  steady_sweeps=args.steady_sweeps, advance_s=args.advance_s, copy_ab=args.copy_ab)
    RESULTS.mkdir(exist_ok=True)
    name = f"steady_state_{args.mode}{'_' + args.label if args.label else ''}.json"
    (RESULTS / name).write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in figures.items() if k != "profile_top"}, indent=2))
    for line in figures.get("profile_top", []):
        print(line)


if __name__ == "__main__":
    main()
