"""``sas bench search`` start to end: the dataset produced when asked, then the three paths measured, the
result written and summed up."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.search.prepare import prepare_dataset
from bench.search.report import markdown_table, write_result
from bench.search.run import BenchConfig, run_search_bench
from sas_core.settings import Settings


@dataclass(frozen=True)
class Preparation:
    """``--prepare``: how large a directory to generate and how much of it takes part."""

    places: int
    gp_participation: float
    other_participation: float
    vendor_share: float


def run_search_command(*, settings: Settings, config: BenchConfig, preparation: Preparation | None, measure: bool,
                       out_dir: Path, log: Callable[[str], None],
                       show_json: Callable[[str], None]) -> dict[str, Any] | None:
    """Prepare (when asked), measure (unless not asked), write ``search-<time>.json``; the result."""
    prepared = None
    if preparation is not None:
        work_dir = settings.cache_dir / "bench" / f"directory-{settings.index_prefix}"
        log(f"preparing {preparation.places} places under prefix {settings.index_prefix!r} (files in {work_dir})…")
        prepared = prepare_dataset(settings=settings, places=preparation.places, work_dir=work_dir, config=config,
                                   log=log, gp_participation=preparation.gp_participation,
                                   other_participation=preparation.other_participation,
                                   vendor_share=preparation.vendor_share)
        show_json(json.dumps(prepared, default=str))
    if not measure:
        return None
    result = run_search_bench(settings=settings, config=config, log=log)
    if prepared is not None:
        result["preparation"] = prepared
    path = write_result(result, out_dir=out_dir)
    log(markdown_table(result))
    show_json(json.dumps({"ratios": result["ratios"], "targets": result["targets"]}))
    log(f"written {path}")
    return result
