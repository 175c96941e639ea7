"""``sas bench search --prepare``: the national dataset produced through the real paths (generate → addresses
and directory loads → simulator → full harvest), under ``settings.index_prefix``."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.common import free_port
from bench.search.processes import start_simulator
from bench.search.run import BenchConfig
from connectors.vendors.config import VendorConfig
from indexer.addresses import load_addresses
from indexer.directory import load_directory
from indexer.harvest_workers import HarvestWorkers
from indexer.lifecycle import setup_indices
from sas_core.es import make_client
from sas_core.settings import Settings
from simulator.generate.directory import generate_directory


def prepare_dataset(*, settings: Settings, places: int, work_dir: Path, config: BenchConfig,
                    log: Callable[[str], None] = print, log_dir: Path | None = None,
                    gp_participation: float = 0.95, other_participation: float = 0.65, vendor_share: float = 0.97,
                    harvest_processes: int = 4) -> dict[str, Any]:
    """Produce the national dataset through the real paths: generate the directory files (RPPS, FINESS,
    participation) → ``indexer.directory.load_directory`` → the vendor simulator (same latency settings
    as the fan-out measurement) → ``indexer.harvest`` full harvest of every vendor over 7 days, in
    ``harvest_processes`` worker processes (``indexer.harvest_workers``).

    Participation: the target state of the platform, most liberal doctors' online agendas aggregated
    (``gp_participation`` of GPs and ``other_participation`` of other liberal doctors take part,
    ``vendor_share`` of them through a vendor), which gives the ≥ 3 M slots over 7 days the benchmark
    asks for with the simulator's realistic fill rates (~35 free slots per place and week)."""
    log_dir = log_dir or (settings.cache_dir / "bench")
    es = make_client(settings, request_timeout=300)
    setup_indices(es, prefix=settings.index_prefix)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    generated = generate_directory(out_dir=work_dir, places=places, seed=config.seed,
                                   gp_participation=gp_participation, other_participation=other_participation,
                                   vendor_share=vendor_share)
    timings["generate_s"] = round(time.perf_counter() - started, 1)
    log(f"generated {generated.to_dict()}")
    started = time.perf_counter()
    # The generated addresses first: places then sit at their addresses, not their commune centres.
    load_addresses(settings=settings, es=es, paths=generated.addresses)
    timings["addresses_load_s"] = round(time.perf_counter() - started, 1)
    started = time.perf_counter()
    summary = load_directory(settings=settings, es=es, rpps_path=generated.rpps, finess_path=generated.finess,
                             participation_path=generated.participation, full=True, progress=False)
    timings["directory_load_s"] = round(time.perf_counter() - started, 1)
    log(f"directory loaded in {timings['directory_load_s']}s")
    es.indices.refresh(index=f"{settings.index_prefix}-offers")
    port = free_port()
    simulator = start_simulator(settings=settings, port=port, p50_ms=config.vendor_p50_ms, p95_ms=config.vendor_p95_ms,
                                seed=config.seed, log_dir=log_dir)
    try:
        counts = es.search(index=f"{settings.index_prefix}-offers", body={
            "size": 0, "aggs": {"v": {"terms": {"field": "sas.vendor", "size": 100},
                                      "aggs": {"k": {"terms": {"field": "kind"}}}}}})["aggregations"]["v"]["buckets"]
        vendors = []
        for bucket in counts:
            kinds = {k["key"] for k in bucket["k"]["buckets"]}
            use_cases = (["ps", "cpts"] if kinds - {"sos"} else []) + (["sos"] if "sos" in kinds else [])
            vendors.append(VendorConfig(name=bucket["key"], base_url=f"http://127.0.0.1:{port}/{bucket['key']}/fhir",
                                        use_cases=use_cases or ["ps"], timeout_s=config.vendor_timeout_s,
                                        concurrency=32, rate_limit_per_s=None))
        started = time.perf_counter()
        runs: list[dict] = []

        def harvest_one(vendor: VendorConfig) -> None:
            run = workers.run(vendor, mode="full")
            runs.append({k: run.get(k) for k in ("vendor", "status", "requests", "read", "upserted", "rejected")})
            log(f"  harvested {vendor.name}: {runs[-1]}")

        with HarvestWorkers(settings=settings, processes=harvest_processes, vendors=vendors) as workers, \
                ThreadPoolExecutor(harvest_processes) as pool:
            list(pool.map(harvest_one, vendors))
        timings["harvest_s"] = round(time.perf_counter() - started, 1)
    finally:
        simulator.stop()
    es.indices.refresh(index=f"{settings.index_prefix}-slots")
    return {"generated": generated.to_dict(), "directory": getattr(summary, "to_dict", lambda: str(summary))(),
            "participation": {"gp": gp_participation, "other": other_participation, "vendor_share": vendor_share},
            "harvest_runs": runs, "timings": timings}
