"""``sas bench directory``: generate the national data set and load it, end to end, and say how fast.

Runs under its own index prefix (``<SAS_INDEX_PREFIX>bench`` by default) so that it never touches the
platform's data; the bench indices are dropped at the end unless asked to keep them. Measures the first
full load (parse → geocode → bulk index into an empty index) and a second identical load (which must
write nothing), and writes the figures as JSON.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import bench_indices, load_average, machine_facts, write_result
from indexer.directory import load_directory
from sas_core.clock import utcnow
from sas_core.settings import Settings
from simulator.generate.directory import generate_directory

TARGET_PLACES_PER_S = 5000


def run_directory_bench(
    *,
    settings: Settings,
    places: int = 300_000,
    departements: list[str] | None = None,
    seed: int = 20240522,
    prefix: str | None = None,
    keep: bool = False,
    output: Path | None = None,
    work_dir: Path | None = None,
    log: Callable[[str], None] = print,
) -> dict:
    """Generate ``places`` practice places, load them twice, return (and write) the result."""
    bench_prefix = prefix or f"{settings.index_prefix}bench"
    bench_settings = settings.model_copy(update={"index_prefix": bench_prefix})
    with bench_indices(bench_settings, prefix=bench_prefix, keep=keep) as es:
        load_before = load_average()
        own_dir = work_dir is None
        directory = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="sas-bench-directory-"))
        try:
            started = time.perf_counter()
            generated = generate_directory(out_dir=directory, places=places, departements=departements, seed=seed,
                                           reference_dir=settings.reference_data_dir)
            generate_s = time.perf_counter() - started
            log(f"generated {generated.places:,} places ({generated.rpps_lines:,} RPPS lines) in {generate_s:.1f}s")
            first = load_directory(settings=bench_settings, es=es, rpps_path=generated.rpps,
                                   finess_path=generated.finess, participation_path=generated.participation,
                                   full=True, progress=False)
            log(f"first load: {first.places:,} offers in {first.duration_s:.1f}s = {first.places_per_s:,.0f} places/s")
            second = load_directory(settings=bench_settings, es=es, rpps_path=generated.rpps,
                                    finess_path=generated.finess, participation_path=generated.participation,
                                    full=True, progress=False)
            log(f"identical reload: {second.unchanged:,} unchanged, {second.indexed} written, "
                f"{second.deleted} deleted in {second.duration_s:.1f}s")
            count = es.count(index=f"{bench_prefix}-offers")["count"]
            nodes = es.nodes.info(filter_path="nodes.*.version").body.get("nodes", {})  # no GET / here
            first_node: dict[str, Any] = next(iter(nodes.values()), {})
            version = first_node.get("version")
            result = {
                "benchmark": "directory",
                "date": utcnow().isoformat(timespec="seconds"),
                "places": first.places,
                "seconds": round(first.duration_s, 2),
                "places_per_s": round(first.places_per_s, 1),
                "target_places_per_s": TARGET_PLACES_PER_S,
                "meets_target": first.places_per_s >= TARGET_PLACES_PER_S,
                "generated_practice_places": generated.places,
                "rpps_lines": generated.rpps_lines,
                "generate_seconds": round(generate_s, 2),
                "generate_places_per_s": round(generated.places / generate_s, 1),
                "lines_read": first.lines_read,
                "rejected": first.rejected,
                "not_geocoded": first.not_geocoded,
                "geo_precision": dict(first.precision),
                "kinds": dict(first.kinds),
                "offers_in_index": count,
                "reload_seconds": round(second.duration_s, 2),
                "reload_places_per_s": round(second.places_per_s, 1),
                "reload_unchanged": second.unchanged,
                "reload_written": second.indexed,
                "reload_deleted": second.deleted,
                "bulk_chunk": settings.directory_bulk_chunk,
                "bulk_threads": settings.directory_bulk_threads,
                "machine": machine_facts(elasticsearch=version, load_average_before=load_before,
                                         load_average_after=load_average()),
                "departements": departements or "all",
                "seed": seed,
            }
        finally:
            if own_dir:
                shutil.rmtree(directory, ignore_errors=True)
    if output is not None:
        write_result(result, output)
        log(f"written {output}")
    return result
