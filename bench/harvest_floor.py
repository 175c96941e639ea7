"""What a harvest figure is measured against, in the same run (``sas bench harvest``).

- The floor: Elasticsearch bulk-indexing the very slot documents a cold sweep wrote, with no harvester — the
  documents read back from the slots index (untimed, into files), then written into a fresh index with the
  same mapping and settings through the harvester's ``BulkWriter`` (its chunk and threads, one writer per
  vendor harvested at once: the sweep's peak of bulk requests in flight). Absolute slots/s move with the
  machine's load; the sweep's ratio to a floor measured right after it does not.
- The steady state: a full sweep with nothing changed at the vendors — what it costs the harvester per
  unchanged slot, and every write Elasticsearch received meanwhile (its own indexing counters, by index and
  operation: what any writer sent, not only what one writer counted).
"""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import orjson
from elasticsearch import Elasticsearch, helpers

from bench.common import load_average
from indexer.bulk import BulkWriter
from indexer.lifecycle import indices_behind

CpuSampler = Callable[[], dict[str, float | None]]

#: Per-index settings Elasticsearch sets itself (they cannot be given to a new index).
_OWN_SETTINGS = {"uuid", "creation_date", "provided_name", "version", "history"}
#: The indexing counters read as write operations (``index`` counts creates, overwrites and applied updates).
_WRITE_COUNTERS = {"index_total": "index", "delete_total": "delete", "noop_update_total": "noop_update",
                   "index_failed": "index_failed", "delete_failed": "delete_failed"}


def cpu_us_per_slot(cpu_s: dict[str, float], slots: int) -> dict[str, float]:
    """CPU microseconds per slot, by process group."""
    return {name: round(value / max(slots, 1) * 1e6, 1) for name, value in cpu_s.items()}


def cpu_delta(before: dict[str, float | None], after: dict[str, float | None]) -> dict[str, float]:
    """CPU seconds spent between two samples, for the groups measured in both (an external node: none)."""
    return {name: round(after_value - value, 2) for name, value in before.items()
            if value is not None and (after_value := after.get(name)) is not None}


# --- The floor ---------------------------------------------------------------------------------------------------


def _copyable_settings(index_settings: dict) -> dict:
    return {key: value for key, value in index_settings.items() if key not in _OWN_SETTINGS}


def dump_slot_documents(es: Elasticsearch, *, slots_alias: str, directory: Path, lanes: int) -> list[Path]:
    """Every document of ``slots_alias`` as ``<id>\\t<source JSON>`` lines, dealt round-robin into ``lanes``
    files (one per writer), so that the timed phase only reads bytes and writes them."""
    paths = [directory / f"lane-{lane}.ndjson" for lane in range(lanes)]
    files = [path.open("wb") for path in paths]
    try:
        for i, hit in enumerate(helpers.scan(es, index=slots_alias, size=5000, preserve_order=False,
                                             query={"query": {"match_all": {}}})):
            files[i % lanes].write(hit["_id"].encode() + b"\t" + orjson.dumps(hit["_source"]) + b"\n")
    finally:
        for file in files:
            file.close()
    return paths


def _write_lane(es: Elasticsearch, *, index: str, path: Path, chunk: int, threads: int) -> BulkWriter:
    writer = BulkWriter(es, index=index, chunk=chunk, threads=threads)
    with writer, path.open("rb") as lines:
        for line in lines:
            doc_id, _, source = line.rstrip(b"\n").partition(b"\t")
            writer.create_raw(doc_id.decode(), source)
    return writer


def measure_floor(es: Elasticsearch, *, slots_alias: str, floor_index: str, chunk: int, threads: int, lanes: int,
                  cpu: CpuSampler, log) -> dict:
    """The floor after a sweep: the documents of ``slots_alias`` bulk-indexed into ``floor_index`` (created
    with the slots index's mapping and settings, dropped at the end), ``lanes`` writers of ``threads``
    threads and ``chunk`` documents per request, then one refresh (as the sweep ends)."""
    source_index = indices_behind(es, slots_alias)[0]
    definition = es.indices.get(index=source_index).body[source_index]
    lanes = max(lanes, 1)
    with tempfile.TemporaryDirectory(prefix="sas-bench-floor-") as directory:
        paths = dump_slot_documents(es, slots_alias=slots_alias, directory=Path(directory), lanes=lanes)
        if es.indices.exists(index=floor_index):
            es.indices.delete(index=floor_index)
        es.indices.create(index=floor_index, mappings=definition["mappings"],
                          settings={"index": _copyable_settings(definition["settings"]["index"])})
        try:
            cpu_before, load_before = cpu(), load_average()
            began = time.perf_counter()
            with ThreadPoolExecutor(lanes) as pool:
                writers = list(pool.map(lambda path: _write_lane(es, index=floor_index, path=path, chunk=chunk,
                                                                 threads=threads), paths))
            es.indices.refresh(index=floor_index)
            seconds = time.perf_counter() - began
            spent = cpu_delta(cpu_before, cpu())
            load_after = load_average()
            indexed = es.count(index=floor_index)["count"]
        finally:
            es.indices.delete(index=floor_index)
    created = sum(w.result_count("created") for w in writers)
    errors = sum(w.errors.count for w in writers)
    if errors or created != indexed:
        raise RuntimeError(f"floor: {created} created, {indexed} in the index, {errors} errors "
                           f"({[m for w in writers for m in w.error_messages][:3]})")
    rate = created / seconds if seconds else 0.0
    log(f"floor: {created} slots bulk-indexed without harvester in {seconds:.1f}s = {rate:,.0f} slots/s; "
        f"CPU seconds {spent}")
    return {"slots": created, "seconds": round(seconds, 2), "slots_per_s": round(rate, 1), "cpu_s": spent,
            "cpu_us_per_slot": cpu_us_per_slot(spent, created), "writers": lanes, "bulk_threads": threads,
            "bulk_chunk": chunk, "load_average": [load_before, load_after]}


def over_floor(slots_per_s: float, floor: dict | None) -> float | None:
    """The sweep's rate as a share of the floor measured after it (``None`` without a floor)."""
    if not floor or not floor["slots_per_s"]:
        return None
    return round(slots_per_s / floor["slots_per_s"], 3)


# --- Writes Elasticsearch received -------------------------------------------------------------------------------


def write_counters(es: Elasticsearch, *, prefix: str) -> dict[str, dict[str, int]]:
    """Elasticsearch's indexing counters of every index of ``prefix``, by logical index (``slots``,
    ``harvest_runs``…) and operation (primaries: one count per operation whatever the replicas)."""
    answer = es.indices.stats(index=f"{prefix}-*", metric="indexing", expand_wildcards="all").body
    version = re.compile(r"-v\d+$")
    counters: dict[str, dict[str, int]] = {}
    for name, stats in answer.get("indices", {}).items():
        logical = version.sub("", name[len(prefix) + 1:])
        indexing = stats["primaries"].get("indexing", {})
        into = counters.setdefault(logical, {op: 0 for op in _WRITE_COUNTERS.values()})
        for counter, op in _WRITE_COUNTERS.items():
            into[op] += int(indexing.get(counter, 0))
    return counters


def counters_delta(before: dict[str, dict[str, int]], after: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """Operations between two readings, by index; indices without any left out."""
    delta: dict[str, dict[str, int]] = {}
    for index, ops in after.items():
        changed = {op: count - before.get(index, {}).get(op, 0) for op, count in ops.items()}
        changed = {op: count for op, count in changed.items() if count}
        if changed:
            delta[index] = changed
    return delta


def steady_state_figures(*, runs: list[dict], seconds: float, cpu_s: dict[str, float],
                         writes: dict[str, dict[str, int]], taken: tuple[int, int], cold_slots: int,
                         load: list[list[float]]) -> dict:
    """The steady-state sweep's figures: CPU per unchanged slot, writes by index and operation.

    ``harvest_runs`` writes are the runs' own records (one when a run starts, one when it ends), not slot
    writes: they are reported apart, the target (no write) is about the data."""
    unchanged = sum(r["unchanged"] for r in runs)
    data_writes = {index: ops for index, ops in writes.items() if index != "harvest_runs"}
    return {
        "vendor_runs": len(runs), "failed_vendors": [r["vendor"] for r in runs if r["status"] != "success"],
        "slots": sum(r["read"] for r in runs), "unchanged": unchanged, "cold_sweep_slots": cold_slots,
        "upserted": sum(r["upserted"] for r in runs), "deleted": sum(r["deleted"] for r in runs),
        "stale_marked": sum(r["stale_marked"] for r in runs),
        # Indexed slots the runs read from Elasticsearch to compare with (all of their windows without the
        # harvester's copy of what it indexed, only what entered them with it).
        "indexed_read": sum(r.get("indexed_read", 0) for r in runs),
        "seconds": round(seconds, 2), "cpu_s": cpu_s,
        "harvester_cpu_us_per_slot": round(cpu_s["harvester"] / max(unchanged, 1) * 1e6, 2)
        if "harvester" in cpu_s else None,
        "elasticsearch_cpu_us_per_slot": round(cpu_s["elasticsearch"] / max(unchanged, 1) * 1e6, 2)
        if "elasticsearch" in cpu_s else None,
        # Every write operation Elasticsearch counted under the bench prefix during the sweep.
        "writes": writes, "data_writes": sum(sum(ops.values()) for ops in data_writes.values()),
        "run_record_writes": sum(writes.get("harvest_runs", {}).values()),
        "slots_taken_at_vendors": {"before": taken[0], "after": taken[1]},
        "load_average": load,
        "target_harvester_cpu_us_per_slot": 15, "target_data_writes": 0,
    }
