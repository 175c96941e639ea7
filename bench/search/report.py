"""What ``sas bench search`` reports: one run's latency summary, the dataset measured, the JSON result files and
the README table."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.common import percentile
from bench.common import write_result as write_json
from sas_core.clock import iso, utcnow


def summarize(latencies_s: Sequence[float], *, wall_s: float, errors: int, extra: dict | None = None) -> dict:
    """p50 / p95 / p99 / mean / max in milliseconds and throughput of one measured run."""
    ms = [v * 1000.0 for v in latencies_s]
    out = {
        "n": len(ms),
        "errors": errors,
        "p50_ms": round(percentile(ms, 50), 2),
        "p95_ms": round(percentile(ms, 95), 2),
        "p99_ms": round(percentile(ms, 99), 2),
        "mean_ms": round(sum(ms) / len(ms), 2) if ms else None,
        "max_ms": round(max(ms), 2) if ms else None,
        "qps": round(len(ms) / wall_s, 2) if wall_s > 0 else None,
        "wall_s": round(wall_s, 2),
    }
    if extra:
        out.update(extra)
    return out


def dataset_counts(es, *, prefix: str) -> dict[str, Any]:
    from mappings.registry import alias_name

    offers = alias_name(prefix, "offers")
    slots = alias_name(prefix, "slots")
    now = utcnow()
    return {
        "offers": es.count(index=offers)["count"],
        "participating_offers": es.count(index=offers, body={"query": {"term": {"sas.participates": True}}})["count"],
        "offers_with_vendor": es.count(index=offers, body={"query": {"exists": {"field": "sas.vendor"}}})["count"],
        "slots": es.count(index=slots)["count"],
        "slots_next_7_days": es.count(index=slots, body={"query": {"range": {"start": {
            "gte": iso(now), "lt": iso(now + timedelta(days=7))}}}})["count"],
        "slots_next_48_h": es.count(index=slots, body={"query": {"range": {"start": {
            "gte": iso(now), "lt": iso(now + timedelta(hours=48))}}}})["count"],
        "vendors": len(es.search(index=offers, body={"size": 0, "aggs": {"v": {"terms": {"field": "sas.vendor",
                                                                                          "size": 100}}}})
                       ["aggregations"]["v"]["buckets"]),
    }


def storage_facts(es, *, prefix: str) -> dict[str, Any]:
    """Primary size on disk and documents of each of the prefix's indices, and the node's heap: what a size of the
    dataset costs the machine."""
    stats = es.indices.stats(index=f"{prefix}-*", metric=["store", "docs"])["indices"]
    indices = {name: {"docs": data["primaries"]["docs"]["count"],
                      "store_mb": round(data["primaries"]["store"]["size_in_bytes"] / 2**20, 1)}
               for name, data in sorted(stats.items())}
    nodes = es.nodes.stats(metric=["jvm", "fs"])["nodes"].values()
    heap = [{"used_mb": round(n["jvm"]["mem"]["heap_used_in_bytes"] / 2**20),
             "max_mb": round(n["jvm"]["mem"]["heap_max_in_bytes"] / 2**20)} for n in nodes]
    return {"indices": indices, "store_mb_total": round(sum(i["store_mb"] for i in indices.values()), 1),
            "heap": heap}


def write_result(result: dict, *, out_dir: Path) -> Path:
    """``bench/results/search-<UTC timestamp>.json`` and ``search-latest.json``."""
    stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
    return write_json(result, out_dir / f"search-{stamp}.json", also=out_dir / "search-latest.json")


def markdown_table(result: dict) -> str:
    """The README table of one result."""
    rows = ["| load | path | p50 ms | p95 ms | p99 ms | throughput (q/s) | errors |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    think = result.get("load", {}).get("think_ms", 0)
    blocks = [(f"16 clients, think {think:g} ms" if think else "16 clients, no think time", result)]
    if "saturation" in result:
        blocks.append(("16 clients, no think time (capacity)", result["saturation"]))
    for load, block in blocks:
        for key, label in (("api", "API (`GET /v1/search`, HTTP)"), ("raw_es", "Elasticsearch alone (same requests)"),
                           ("fanout", "live fan-out to vendors (baseline)")):
            if key in block:
                r = block[key]
                rows.append(f"| {load} | {label} | {r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} | {r['qps']} | "
                            f"{r['errors']} |")
    return "\n".join(rows)


def add_ratios_and_targets(result: dict, *, dataset: dict) -> None:
    """The ratios between the paths and whether each target is met, added to ``result``."""
    api_p95 = result["api"]["p95_ms"]
    raw_p95 = result["raw_es"]["p95_ms"]
    result["ratios"] = {"api_p95_over_raw_p95": round(api_p95 / raw_p95, 2) if raw_p95 else None}
    result["targets"] = {"api_p95_ms_max": 50, "api_p99_ms_max": 120, "api_over_raw_p95_max": 1.5,
                         "fanout_over_api_p95_min": 20,
                         "api_p95_met": api_p95 <= 50, "api_p99_met": result["api"]["p99_ms"] <= 120,
                         "api_over_raw_met": bool(raw_p95) and api_p95 / raw_p95 <= 1.5,
                         "dataset_met": dataset["offers"] >= 300_000 and dataset["slots_next_7_days"] >= 3_000_000}
    if "saturation" in result:
        sat = result["saturation"]
        result["ratios"]["saturation_api_p95_over_raw_p95"] = (
            round(sat["api"]["p95_ms"] / sat["raw_es"]["p95_ms"], 2) if sat["raw_es"]["p95_ms"] else None)
    if "fanout" in result:
        ratio = result["fanout"]["p95_ms"] / api_p95 if api_p95 else None
        result["ratios"]["fanout_p95_over_api_p95"] = round(ratio, 1) if ratio else None
        result["targets"]["fanout_over_api_met"] = ratio is not None and ratio >= 20
