"""``sas bench addresses``: the BAN load rate, and how precisely a directory load then places its places.

Under its own index prefix (``<SAS_INDEX_PREFIX>bench``, dropped at the end unless kept): generate the
directory files with their BAN-format address files, load the addresses (lines/s, the figure the target
is about), then the directory, and report the share of places at each ``geo_precision``.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.common import bench_indices, load_average, machine_facts, write_result
from indexer.addresses import address_count, load_addresses
from indexer.directory import load_directory
from sas_core.clock import utcnow
from sas_core.settings import Settings
from simulator.generate.directory import generate_directory

TARGET_LINES_PER_S = 30_000


def run_addresses_bench(*, settings: Settings, places: int = 300_000, departements: list[str] | None = None,
                        seed: int = 20240522, prefix: str | None = None, keep: bool = False,
                        output: Path | None = None, log: Callable[[str], None] = print) -> dict:
    bench_prefix = prefix or f"{settings.index_prefix}bench"
    bench_settings = settings.model_copy(update={"index_prefix": bench_prefix})
    with bench_indices(bench_settings, prefix=bench_prefix, keep=keep) as es:
        load_before = load_average()
        directory = Path(tempfile.mkdtemp(prefix="sas-bench-addresses-"))
        try:
            started = time.perf_counter()
            generated = generate_directory(out_dir=directory, places=places, departements=departements, seed=seed,
                                           reference_dir=settings.reference_data_dir)
            log(f"generated {generated.places:,} places and {len(generated.addresses)} address files "
                f"in {time.perf_counter() - started:.1f}s")
            loaded = load_addresses(settings=bench_settings, es=es, paths=generated.addresses)
            log(f"addresses: {loaded.lines_read:,} lines in {loaded.duration_s:.1f}s = "
                f"{loaded.lines_per_s:,.0f} lines/s")
            reload = load_addresses(settings=bench_settings, es=es, paths=generated.addresses)
            kinds = address_count(es, bench_settings)
            summary = load_directory(settings=bench_settings, es=es, rpps_path=generated.rpps,
                                     finess_path=generated.finess, participation_path=generated.participation,
                                     full=True, progress=False)
            placed = sum(summary.precision.values())
            shares = {k: round(v / placed, 4) for k, v in sorted(summary.precision.items())} if placed else {}
            log(f"directory: {summary.places:,} places in {summary.duration_s:.1f}s, precision {shares}")
            result = {
                "benchmark": "addresses",
                "date": utcnow().isoformat(timespec="seconds"),
                "lines": loaded.lines_read,
                "seconds": round(loaded.duration_s, 2),
                "lines_per_s": round(loaded.lines_per_s, 1),
                "target_lines_per_s": TARGET_LINES_PER_S,
                "meets_target": loaded.lines_per_s >= TARGET_LINES_PER_S,
                "rejected": loaded.rejected,
                "documents": kinds,
                "reload_seconds": round(reload.duration_s, 2),
                "reload_lines_per_s": round(reload.lines_per_s, 1),
                "directory_places": summary.places,
                "directory_seconds": round(summary.duration_s, 2),
                "directory_places_per_s": round(summary.places_per_s, 1),
                "geo_precision": dict(sorted(summary.precision.items())),
                "geo_precision_share": shares,
                "not_geocoded": summary.not_geocoded,
                "geocoder": summary.geocoder,
                "bulk_chunk": settings.addresses_bulk_chunk,
                "bulk_threads": settings.addresses_bulk_threads,
                "machine": machine_facts(load_average_before=load_before, load_average_after=load_average()),
                "places": places,
                "departements": departements or "all",
                "seed": seed,
            }
        finally:
            shutil.rmtree(directory, ignore_errors=True)
    if output is not None:
        write_result(result, output)
        log(f"written {output}")
    return result
