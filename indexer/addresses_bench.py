"""``sas bench addresses``: the BAN load rate, and how precisely a directory load then places its places.

Under its own index prefix (``<SAS_INDEX_PREFIX>bench``, dropped at the end unless kept): generate the
directory files with their BAN-format address files, load the addresses (lines/s, the figure the target
is about), then the directory, and report the share of places at each ``geo_precision``.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from indexer.addresses import address_count, load_addresses
from indexer.directory import load_directory
from indexer.lifecycle import drop_prefix, setup_indices
from sas_core.es import make_client
from sas_core.settings import Settings

TARGET_LINES_PER_S = 30_000


def run_addresses_bench(*, settings: Settings, places: int = 300_000, departements: list[str] | None = None,
                        seed: int = 20240522, prefix: str | None = None, keep: bool = False,
                        output: Path | None = None, log: Callable[[str], None] = print) -> dict:
    from connectors.directory.generator import generate_directory

    bench_prefix = prefix or f"{settings.index_prefix}bench"
    bench_settings = settings.model_copy(update={"index_prefix": bench_prefix})
    es = make_client(bench_settings, request_timeout=300)
    drop_prefix(es, prefix=bench_prefix)
    setup_indices(es, prefix=bench_prefix)
    load_before = os.getloadavg()
    directory = Path(tempfile.mkdtemp(prefix="sas-bench-addresses-"))
    try:
        started = time.perf_counter()
        generated = generate_directory(out_dir=directory, places=places, departements=departements, seed=seed,
                                       reference_dir=settings.reference_data_dir)
        log(f"generated {generated.places:,} places and {len(generated.addresses)} address files "
            f"in {time.perf_counter() - started:.1f}s")
        loaded = load_addresses(settings=bench_settings, es=es, paths=generated.addresses)
        log(f"addresses: {loaded.lines_read:,} lines in {loaded.duration_s:.1f}s = {loaded.lines_per_s:,.0f} lines/s")
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
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
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
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                        "load_average_before": [round(x, 2) for x in load_before],
                        "load_average_after": [round(x, 2) for x in os.getloadavg()]},
            "places": places,
            "departements": departements or "all",
            "seed": seed,
        }
    finally:
        shutil.rmtree(directory, ignore_errors=True)
        if not keep:
            drop_prefix(es, prefix=bench_prefix)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(result, indent=2) + "\n")
        log(f"written {output}")
    return result
