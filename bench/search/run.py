"""The whole of ``sas bench search``: produce the dataset through the real paths, then measure the three paths
on the same query mix."""

from __future__ import annotations

import math
import platform
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.common import ManagedProcess, free_port, load_average, machine_facts, wait_for_merges
from bench.search.capture import Capture, capture_api_requests, uncached
from bench.search.fanout import run_fanout
from bench.search.latency import LogNormalLatency
from bench.search.load import api_sender, raw_sender, run_load
from bench.search.mix import BenchQuery, PlaceIndex, build_query_mix, mix_fingerprint, other_specialty_weights
from bench.search.processes import start_api, start_simulator
from bench.search.report import add_ratios_and_targets, dataset_counts, storage_facts, summarize
from connectors.reference import load_communes
from sas_core.clock import utcnow
from sas_core.es import make_client
from sas_core.settings import Settings


@dataclass
class BenchConfig:
    queries: int = 3000
    warmup: int = 300
    clients: int = 16
    #: Mean exponential think time of each client between two searches (an operator reads the answer).
    think_ms: float = 500.0
    #: Also measure api and raw_es without think time (the machine's capacity).
    saturation: bool = True
    fanout_queries: int = 320
    seed: int = 20240522
    gp_share: float = 0.7
    vendor_p50_ms: float = 250.0
    vendor_p95_ms: float = 1500.0
    vendor_timeout_s: float = 7.0
    api_url: str | None = None
    simulator_url: str | None = None
    api_workers: int = 1
    skip_fanout: bool = False
    rate_limit: str = "1000/second"


@dataclass
class _Target:
    """Where one measured path is sent, and what."""

    host: str
    port: int


def _capture_mix(es, *, settings: Settings, config: BenchConfig, communes: list, log: Callable[[str], None]):
    """The fixed query mix, and the Elasticsearch requests the API makes for each of its queries."""
    weights = other_specialty_weights(es, prefix=settings.index_prefix)
    total = config.warmup + config.queries
    mix = build_query_mix(communes=communes, other_specialties=weights, n=total, seed=config.seed,
                          gp_share=config.gp_share)
    log(f"query mix: {total} queries (seed {config.seed}), {sum(q.specialty == 'SM54' for q in mix)} general practice")
    log("capturing the Elasticsearch requests of every query through the API's own search service…")
    started = time.perf_counter()
    capture = capture_api_requests(settings=settings, mix=mix)
    log(f"  captured in {time.perf_counter() - started:.1f}s; requests per query "
        f"{dict(sorted(Counter(len(r) for r in capture.requests).items()))}; failures {dict(capture.failures)}")
    return mix, capture


def _result_head(*, settings: Settings, config: BenchConfig, dataset: dict, mix: list[BenchQuery],
                 capture: Capture) -> dict[str, Any]:
    per_query = Counter(len(r) for r in capture.requests)
    radii = Counter(r for r in capture.radius_km if r is not None)
    return {
        "benchmark": "search",
        "started_at": utcnow().isoformat(timespec="seconds"),
        # Other work on the machine skews every figure: the 1/5/15-minute load before measuring.
        "machine": machine_facts(platform=platform.platform(), loadavg_before=load_average()),
        "dataset": {**dataset, "prefix": settings.index_prefix},
        "mix": {"queries": config.queries, "warmup": config.warmup, "seed": config.seed, "gp_share": config.gp_share,
                "fingerprint": mix_fingerprint(mix), "distinct_communes": len({q.insee for q in mix}),
                "radius_applied_km": {str(k): v for k, v in sorted(radii.items())},
                "es_requests_per_query": {str(k): v for k, v in sorted(per_query.items())}},
        "load": {"clients": config.clients, "model": "closed loop" if not config.think_ms else
                 f"closed loop, each client thinking an exponential time (mean {config.think_ms:g} ms) "
                 "between its searches", "think_ms": config.think_ms, "api_workers": config.api_workers},
    }


def _api_target(*, settings: Settings, config: BenchConfig, processes: list[ManagedProcess], log_dir: Path,
                log: Callable[[str], None]) -> _Target:
    """The API given (``api_url``), else ``sas serve`` started on a free port."""
    if config.api_url:
        parts = urlsplit(config.api_url)
        return _Target(parts.hostname or "127.0.0.1", parts.port or 80)
    port = free_port()
    log(f"starting the API on port {port} ({config.api_workers} worker(s))…")
    processes.append(start_api(settings=settings, port=port, rate_limit=config.rate_limit, log_dir=log_dir,
                               workers=config.api_workers))
    return _Target("127.0.0.1", port)


def _measure_api_and_raw(*, settings: Settings, config: BenchConfig, api: _Target, mix: list[BenchQuery],
                         capture: Capture, log: Callable[[str], None]) -> dict[str, Any]:
    """``raw_es`` and ``api`` with think time, then without (``saturation``) when asked."""
    from search_api.auth import issue_dev_token

    tokens = [issue_dev_token(settings=settings, roles=["osnp"], territories=[], sub=f"bench-operator-{i}",
                              ttl_s=6 * 3600) for i in range(config.clients)]
    es_parts = urlsplit(settings.es_url)
    es = _Target(es_parts.hostname or "127.0.0.1", es_parts.port or 9200)
    measured = [mix[config.warmup + i] for i in range(config.queries)]
    raw_capture = Capture(requests=[[uncached(request) for request in requests]
                                    for requests in capture.requests[config.warmup:]])
    log(f"warm-up: {config.warmup} queries through the API, then the measured queries once through the API "
        "(not measured), so that every measured pass follows a pass of the other path over the same queries…")
    run_load(clients=config.clients, jobs=config.warmup, host=api.host, port=api.port, send=api_sender(mix, tokens))
    run_load(clients=config.clients, jobs=config.queries, host=api.host, port=api.port,
             send=api_sender(measured, tokens))

    def measure_api(think_ms: float) -> dict:
        statuses: Counter = Counter()
        log(f"api: {config.queries} queries, {config.clients} clients, think time {think_ms:g} ms…")
        load = run_load(clients=config.clients, jobs=config.queries, host=api.host, port=api.port,
                        send=api_sender(measured, tokens, status_log=statuses), think_ms=think_ms, seed=config.seed)
        out = summarize(load.latencies_s, wall_s=load.wall_s, errors=sum(load.errors.values()),
                        extra={"error_kinds": dict(load.errors),
                               "non_200": {str(k): v for k, v in statuses.items()}})
        log(f"  api: {out}")
        return out

    def measure_raw(think_ms: float) -> dict:
        log(f"raw_es: the same {config.queries} queries' requests replayed to {settings.es_url}, "
            f"think time {think_ms:g} ms…")
        load = run_load(clients=config.clients, jobs=config.queries, host=es.host, port=es.port,
                        send=raw_sender(raw_capture), think_ms=think_ms, seed=config.seed)
        out = summarize(load.latencies_s, wall_s=load.wall_s, errors=sum(load.errors.values()),
                        extra={"error_kinds": dict(load.errors)})
        log(f"  raw_es: {out}")
        return out

    # Order: API pass (warm-up above) → raw → API → [raw → API without think time]: each measured pass
    # follows a pass of the other path over the same queries (same state of Elasticsearch's caches).
    measures: dict[str, Any] = {"raw_es": measure_raw(config.think_ms), "api": measure_api(config.think_ms)}
    if config.saturation and config.think_ms > 0:
        raw_sat = measure_raw(0.0)
        measures["saturation"] = {"model": "closed loop without think time: capacity of the machine",
                                  "raw_es": raw_sat, "api": measure_api(0.0)}
    return measures


def _simulator_info(config: BenchConfig) -> dict[str, Any]:
    """The vendor latency injected (its p99 follows from the log-normal's median and p95)."""
    z99 = 2.3263478740408408
    p99 = config.vendor_p50_ms * math.exp(z99 * math.log(config.vendor_p95_ms / config.vendor_p50_ms)
                                          / LogNormalLatency.Z95)
    return {"latency": {"distribution": "log-normal", "p50_ms": config.vendor_p50_ms, "p95_ms": config.vendor_p95_ms,
                        "p99_ms": round(p99, 1)},
            "vendor_timeout_s": config.vendor_timeout_s, "ids_per_request": 25}


def _measure_fanout(*, settings: Settings, config: BenchConfig, mix: list[BenchQuery], capture: Capture,
                    communes: list, processes: list[ManagedProcess], log_dir: Path,
                    log: Callable[[str], None]) -> dict[str, Any]:
    """The live fan-out through the simulator (given, or started behind its latency layer)."""
    if config.simulator_url:
        simulator_url = config.simulator_url
    else:
        port = free_port()
        log(f"starting the vendor simulator on port {port} (log-normal latency p50 {config.vendor_p50_ms:g} ms,"
            f" p95 {config.vendor_p95_ms:g} ms)…")
        processes.append(start_simulator(settings=settings, port=port, p50_ms=config.vendor_p50_ms,
                                         p95_ms=config.vendor_p95_ms, seed=config.seed, log_dir=log_dir))
        simulator_url = f"http://127.0.0.1:{port}"
    places = PlaceIndex(communes)
    jobs = []
    for i in range(config.fanout_queries):
        index = config.warmup + (i % config.queries)
        radius = capture.radius_km[index]
        if radius is None:
            continue
        query = mix[index]
        lat, lon = places.point(query.insee)
        jobs.append((query, lat, lon, radius))
    log(f"fanout: {len(jobs)} queries through the vendors, {config.clients} clients…")
    fan = run_fanout(settings=settings, simulator_url=simulator_url, jobs=jobs, clients=config.clients,
                     vendor_timeout_s=config.vendor_timeout_s)
    out = summarize(fan.latencies_s, wall_s=fan.wall_s, errors=sum(fan.errors.values()), extra={
        "error_kinds": dict(fan.errors),
        "vendor_requests_per_query_mean": round(sum(fan.vendor_requests) / max(1, len(fan.vendor_requests)), 1),
        "vendor_requests_per_query_max": max(fan.vendor_requests, default=0),
        "practitioners_asked_mean": round(sum(fan.practitioners) / max(1, len(fan.practitioners)), 1),
        "vendor_timeouts": fan.vendor_timeouts,
        "vendor_failures": fan.vendor_failures,
        "slots_returned_mean": round(sum(fan.slots) / max(1, len(fan.slots)), 1),
    })
    log(f"  fanout: {out}")
    return out


def run_search_bench(*, settings: Settings, config: BenchConfig, log: Callable[[str], None] = print,
                     log_dir: Path | None = None) -> dict[str, Any]:
    """Measure api, raw_es and fanout on the dataset of ``settings.index_prefix``; the result document."""
    log_dir = log_dir or (settings.cache_dir / "bench")
    es = make_client(settings, request_timeout=120)
    dataset = dataset_counts(es, prefix=settings.index_prefix)
    log(f"dataset {settings.index_prefix}: {dataset}")
    if not dataset["slots"]:
        raise RuntimeError(f"no slot under prefix {settings.index_prefix!r}: load a dataset first (sas bench search "
                           "--prepare …)")
    merges = wait_for_merges(es, log=log)
    communes = load_communes(settings.reference_data_dir)
    mix, capture = _capture_mix(es, settings=settings, config=config, communes=communes, log=log)
    result = _result_head(settings=settings, config=config, dataset=dataset, mix=mix, capture=capture)
    result["machine"]["merges_before"] = merges
    processes: list[ManagedProcess] = []
    try:
        api = _api_target(settings=settings, config=config, processes=processes, log_dir=log_dir, log=log)
        result.update(_measure_api_and_raw(settings=settings, config=config, api=api, mix=mix, capture=capture,
                                           log=log))
        result["simulator"] = _simulator_info(config)
        if not config.skip_fanout:
            result["fanout"] = _measure_fanout(settings=settings, config=config, mix=mix, capture=capture,
                                               communes=communes, processes=processes, log_dir=log_dir, log=log)
    finally:
        for process in reversed(processes):
            process.stop()
    result["machine"]["loadavg_after"] = load_average()
    result["storage"] = storage_facts(es, prefix=settings.index_prefix)
    add_ratios_and_targets(result, dataset=dataset)
    return result
