"""``sas bench api-cpu``: the API's own CPU time per search, robust to a shared machine.

Latency and capacity move with whatever else runs on the machine; the CPU time the API process spends
per search does not (much): it is what the API takes from Elasticsearch on the same cores. The API is
started as deployed (``sas serve``, one worker, JSON access logs), the query mix of ``sas bench search``
is sent through it without think time, and the CPU time of the API process (``/proc/<pid>/stat`` utime
+ stime, all its threads) and of the Elasticsearch node (its ``process.cpu`` statistics) is read before
and after each round. Read-only on the dataset of ``settings.index_prefix``."""

from __future__ import annotations

import os
import platform
import statistics
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import free_port, load_average, machine_facts, write_result
from bench.search.load import api_sender, run_load
from bench.search.mix import build_query_mix, mix_fingerprint, other_specialty_weights
from bench.search.processes import start_api
from connectors.reference import load_communes
from sas_core.clock import utcnow
from sas_core.es import make_client
from sas_core.settings import Settings

_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ApiCpuConfig:
    queries: int = 500
    #: Searches sent once before the rounds (not measured): caches filled, code paths warm.
    warmup: int = 300
    rounds: int = 3
    #: Concurrent clients, no think time: enough to keep the one worker busy, few enough not to queue.
    clients: int = 4
    seed: int = 20240522
    gp_share: float = 0.7


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far, every thread included."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        # The command name (field 2) may hold spaces: the fields after its closing parenthesis.
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS_PER_S


def es_cpu_s(es) -> float:
    """CPU seconds of the Elasticsearch node(s) so far (a read of node statistics)."""
    nodes = es.nodes.stats(metric="process", filter_path="nodes.*.process.cpu.total_in_millis").body["nodes"]
    return sum(node["process"]["cpu"]["total_in_millis"] for node in nodes.values()) / 1000.0


def run_api_cpu_bench(*, settings: Settings, config: ApiCpuConfig, log: Callable[[str], None] = print,
                      log_dir: Path | None = None) -> dict[str, Any]:
    """The result document: per round, API and Elasticsearch CPU ms per search and the throughput."""
    from search_api.auth import issue_dev_token

    log_dir = log_dir or (settings.cache_dir / "bench")
    es = make_client(settings, request_timeout=60)
    weights = other_specialty_weights(es, prefix=settings.index_prefix)
    mix = build_query_mix(communes=load_communes(settings.reference_data_dir), other_specialties=weights,
                          n=config.warmup + config.queries, seed=config.seed, gp_share=config.gp_share)
    measured = mix[config.warmup:]
    tokens = [issue_dev_token(settings=settings, roles=["osnp"], territories=[], sub=f"bench-operator-{i}",
                              ttl_s=3600) for i in range(config.clients)]
    port = free_port()
    log(f"starting the API on port {port} (prefix {settings.index_prefix!r})…")
    api = start_api(settings=settings, port=port, rate_limit="1000/second", log_dir=log_dir)
    rounds: list[dict[str, Any]] = []
    try:
        log(f"warm-up: {config.warmup} searches, then the {config.queries} measured ones once…")
        run_load(clients=config.clients, jobs=config.warmup, host="127.0.0.1", port=port,
                 send=api_sender(mix, tokens))
        run_load(clients=config.clients, jobs=config.queries, host="127.0.0.1", port=port,
                 send=api_sender(measured, tokens))
        for number in range(config.rounds):
            statuses: Counter = Counter()
            api_before, es_before = process_cpu_s(api.pid), es_cpu_s(es)
            load = run_load(clients=config.clients, jobs=config.queries, host="127.0.0.1", port=port,
                            send=api_sender(measured, tokens, status_log=statuses))
            api_after, es_after = process_cpu_s(api.pid), es_cpu_s(es)
            done = len(load.latencies_s)
            out = {
                "searches": done,
                "errors": sum(load.errors.values()),
                "non_200": {str(k): v for k, v in statuses.items()},
                "api_cpu_ms_per_search": round((api_after - api_before) * 1000 / max(1, done), 3),
                "es_cpu_ms_per_search": round((es_after - es_before) * 1000 / max(1, done), 3),
                "qps": round(done / load.wall_s, 1),
                "wall_s": round(load.wall_s, 2),
            }
            log(f"  round {number + 1}: {out}")
            rounds.append(out)
    finally:
        api.stop()
    api_ms = [r["api_cpu_ms_per_search"] for r in rounds]
    es_ms = [r["es_cpu_ms_per_search"] for r in rounds]
    return {
        "benchmark": "api_cpu",
        "started_at": utcnow().isoformat(timespec="seconds"),
        "machine": machine_facts(platform=platform.platform(), loadavg_after=load_average(),
                                 clock_ticks_per_s=_TICKS_PER_S),
        "prefix": settings.index_prefix,
        "mix": {"queries": config.queries, "warmup": config.warmup, "seed": config.seed,
                "gp_share": config.gp_share, "fingerprint": mix_fingerprint(measured)},
        "load": {"clients": config.clients, "think_ms": 0, "api": "sas serve, 1 worker, JSON access log"},
        "rounds": rounds,
        "api_cpu_ms_per_search_median": statistics.median(api_ms),
        "es_cpu_ms_per_search_median": statistics.median(es_ms),
        # Node statistics count every client of the node: on a shared machine, others' work too.
        "es_cpu_note": "the whole Elasticsearch node's CPU during the round, divided by the searches sent",
        # The share of the machine's CPU per search that is the API's own (the rest is Elasticsearch).
        "api_share_of_cpu": round(statistics.median(api_ms) / (statistics.median(api_ms)
                                                                + statistics.median(es_ms)), 3),
    }


def write_api_cpu_result(result: dict[str, Any], *, path: Path) -> Path:
    return write_result(result, path)
