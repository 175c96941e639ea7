"""``sas bench search --prepare``: the national dataset produced through the real paths (generate → addresses
and directory loads → simulator → full harvest), under ``settings.index_prefix``.

A national preparation takes most of an hour on two cores, so it is kept: every stage that finishes is written
to ``prepared.json`` in the work directory, and a later ``--prepare`` with the same parameters skips what is
already done and still true (the files exist; the index still holds the counts the stage recorded). Slots age
(a 7-day window slides by a day a day), so the harvest stage is redone once it is older than
``harvest_max_age_h``: a kept dataset is re-harvested, never regenerated or reloaded."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
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
from mappings.registry import alias_name
from sas_core.clock import iso, utcnow
from sas_core.es import make_client
from sas_core.settings import Settings
from simulator.generate.directory import generate_directory


@dataclass(frozen=True)
class Shape:
    """What is generated: the parameters a kept stage must match to be reused."""

    places: int
    seed: int
    gp_participation: float
    other_participation: float
    vendor_share: float

    def to_dict(self) -> dict[str, Any]:
        return {"places": self.places, "seed": self.seed, "gp_participation": self.gp_participation,
                "other_participation": self.other_participation, "vendor_share": self.vendor_share}


@dataclass
class Manifest:
    """``prepared.json``: the stages done for one prefix, with what each recorded."""

    path: Path
    shape: dict[str, Any]
    prefix: str
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def open(cls, work_dir: Path, *, shape: Shape, prefix: str) -> Manifest:
        """The kept manifest when it describes the same shape and prefix, else an empty one (everything redone)."""
        path = work_dir / "prepared.json"
        if path.exists():
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("shape") == shape.to_dict() and data.get("prefix") == prefix:
                return cls(path=path, shape=data["shape"], prefix=prefix, stages=data.get("stages", {}))
        return cls(path=path, shape=shape.to_dict(), prefix=prefix)

    def done(self, stage: str, **record: Any) -> None:
        self.stages[stage] = {**record, "finished_at": iso(utcnow())}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps({"shape": self.shape, "prefix": self.prefix, "stages": self.stages},
                                        indent=2, default=str) + "\n", encoding="utf-8")

    def drop_from(self, stage: str, order: tuple[str, ...]) -> None:
        """Forget ``stage`` and every later one (an earlier stage was redone: the later ones are stale)."""
        for name in order[order.index(stage):]:
            self.stages.pop(name, None)


STAGES = ("generate", "addresses", "directory", "harvest")


def _count(es, *, prefix: str, name: str) -> int:
    alias = alias_name(prefix, name)
    return int(es.count(index=alias)["count"]) if es.indices.exists_alias(name=alias) else -1


def _generated_files(record: dict[str, Any]) -> dict[str, Any] | None:
    """The generated files of a kept ``generate`` stage, when they are all still there."""
    generated = record.get("generated") or {}
    paths = [generated.get("rpps"), generated.get("finess"), generated.get("participation"),
             *generated.get("addresses", [])]
    return generated if paths and all(p and Path(p).exists() for p in paths) else None


def _unfinished(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The harvest runs that did not succeed."""
    return [run for run in runs if run.get("status") != "success"]


def _harvest_fresh(record: dict[str, Any], *, max_age_h: float) -> bool:
    """A kept harvest is reused when it wrote slots, every run succeeded, and it is recent (the 7-day
    window slides). A harvest whose workers all died once recorded 0 slots and was kept as done."""
    finished = record.get("finished_at")
    if not finished or not record.get("slots"):
        return False
    if _unfinished(record.get("runs") or []):
        return False
    age = utcnow() - datetime.fromisoformat(finished.replace("Z", "+00:00"))
    return age < timedelta(hours=max_age_h)


def prepare_dataset(*, settings: Settings, places: int, work_dir: Path, config: BenchConfig,
                    log: Callable[[str], None] = print, log_dir: Path | None = None,
                    gp_participation: float = 0.95, other_participation: float = 0.65, vendor_share: float = 0.97,
                    harvest_processes: int = 4, harvest_max_age_h: float = 12.0) -> dict[str, Any]:
    """Produce the national dataset through the real paths: generate the directory files (RPPS, FINESS,
    participation) → ``indexer.directory.load_directory`` → the vendor simulator (same latency settings
    as the fan-out measurement) → ``indexer.harvest`` full harvest of every vendor over 7 days, in
    ``harvest_processes`` worker processes (``indexer.harvest_workers``). Stages already done with the same
    parameters are skipped (module doc).

    Participation: the target state of the platform, most liberal doctors' online agendas aggregated
    (``gp_participation`` of GPs and ``other_participation`` of other liberal doctors take part,
    ``vendor_share`` of them through a vendor), which gives the ≥ 3 M slots over 7 days the benchmark
    asks for at 300,000 places with the simulator's realistic fill rates (~35 free slots per place and week)."""
    log_dir = log_dir or (settings.cache_dir / "bench")
    prefix = settings.index_prefix
    es = make_client(settings, request_timeout=300)
    setup_indices(es, prefix=prefix)
    shape = Shape(places=places, seed=config.seed, gp_participation=gp_participation,
                  other_participation=other_participation, vendor_share=vendor_share)
    manifest = Manifest.open(work_dir, shape=shape, prefix=prefix)
    skipped: list[str] = []

    generated = _generated_files(manifest.stages.get("generate", {}))
    if generated is None:
        manifest.drop_from("generate", STAGES)
        started = time.perf_counter()
        made = generate_directory(out_dir=work_dir, places=places, seed=config.seed,
                                  gp_participation=gp_participation, other_participation=other_participation,
                                  vendor_share=vendor_share)
        generated = made.to_dict()
        manifest.done("generate", generated=generated, seconds=round(time.perf_counter() - started, 1))
        log(f"generated {generated}")
    else:
        skipped.append("generate")

    # The generated addresses first: places then sit at their addresses, not their commune centres.
    kept = manifest.stages.get("addresses")
    if kept and _count(es, prefix=prefix, name="addresses") == kept["count"]:
        skipped.append("addresses")
    else:
        manifest.drop_from("addresses", STAGES)
        started = time.perf_counter()
        load_addresses(settings=settings, es=es, paths=[Path(p) for p in generated["addresses"]])
        es.indices.refresh(index=alias_name(prefix, "addresses"))
        manifest.done("addresses", seconds=round(time.perf_counter() - started, 1),
                      count=_count(es, prefix=prefix, name="addresses"))
        log(f"addresses loaded in {manifest.stages['addresses']['seconds']}s")

    kept = manifest.stages.get("directory")
    # ≥: the harvest adds the places vendors publish that the directory does not have (vendor places).
    if kept and _count(es, prefix=prefix, name="offers") >= kept["count"]:
        skipped.append("directory")
    else:
        manifest.drop_from("directory", STAGES)
        started = time.perf_counter()
        summary = load_directory(settings=settings, es=es, rpps_path=generated["rpps"],
                                 finess_path=generated["finess"], participation_path=generated["participation"],
                                 full=True, progress=False)
        es.indices.refresh(index=alias_name(prefix, "offers"))
        manifest.done("directory", seconds=round(time.perf_counter() - started, 1),
                      count=_count(es, prefix=prefix, name="offers"),
                      summary=getattr(summary, "to_dict", lambda: str(summary))())
        log(f"directory loaded in {manifest.stages['directory']['seconds']}s")

    kept = manifest.stages.get("harvest")
    if kept and _harvest_fresh(kept, max_age_h=harvest_max_age_h):
        skipped.append("harvest")
    else:
        started = time.perf_counter()
        runs = _harvest_everything(es, settings=settings, config=config, log=log, log_dir=log_dir,
                                   processes=harvest_processes)
        es.indices.refresh(index=alias_name(prefix, "slots"))
        slots = _count(es, prefix=prefix, name="slots")
        unfinished = _unfinished(runs)
        if unfinished or not slots:
            # Not recorded as done: the next --prepare harvests again instead of measuring a hollow dataset.
            raise RuntimeError(f"harvest incomplete under {prefix!r}: {slots} slots, runs not successful: "
                               f"{[(run.get('vendor'), run.get('status')) for run in unfinished]}")
        manifest.done("harvest", seconds=round(time.perf_counter() - started, 1), runs=runs, slots=slots)
    if skipped:
        log(f"kept from an earlier preparation (same shape, still true): {', '.join(skipped)}")
    return {"shape": shape.to_dict(), "skipped": skipped,
            "generated": {k: v for k, v in generated.items() if k != "addresses"},
            "timings": {f"{name}_s": manifest.stages[name].get("seconds") for name in STAGES
                        if name in manifest.stages},
            "harvest_runs": manifest.stages["harvest"]["runs"],
            "directory": manifest.stages["directory"].get("summary")}


def _bench_vendors(es, *, prefix: str, port: int, config: BenchConfig) -> list[VendorConfig]:
    """One vendor configuration per vendor the offers name, all served by the simulator on ``port``."""
    counts = es.search(index=alias_name(prefix, "offers"), body={
        "size": 0, "aggs": {"v": {"terms": {"field": "sas.vendor", "size": 100},
                                  "aggs": {"k": {"terms": {"field": "kind"}}}}}})["aggregations"]["v"]["buckets"]
    vendors = []
    for bucket in counts:
        kinds = {k["key"] for k in bucket["k"]["buckets"]}
        use_cases = (["ps", "cpts"] if kinds - {"sos"} else []) + (["sos"] if "sos" in kinds else [])
        # Producing the data, not measuring the vendors: one simulator process serves every harvest worker,
        # and on a loaded machine its answers can take longer than the fan-out's 7 s timeout — a timeout here
        # only loses slots the dataset should have. Patient timeouts, fewer requests in flight.
        vendors.append(VendorConfig(name=bucket["key"], base_url=f"http://127.0.0.1:{port}/{bucket['key']}/fhir",
                                    use_cases=use_cases or ["ps"], timeout_s=max(config.vendor_timeout_s, 60.0),
                                    concurrency=8, rate_limit_per_s=None))
    return vendors


def _harvest_everything(es, *, settings: Settings, config: BenchConfig, log: Callable[[str], None],
                        log_dir: Path, processes: int) -> list[dict[str, Any]]:
    """A full harvest of every vendor through the simulator (behind its latency layer); the runs' counts."""
    port = free_port()
    simulator = start_simulator(settings=settings, port=port, p50_ms=config.vendor_p50_ms,
                                p95_ms=config.vendor_p95_ms, seed=config.seed, log_dir=log_dir)
    runs: list[dict[str, Any]] = []
    try:
        vendors = _bench_vendors(es, prefix=settings.index_prefix, port=port, config=config)

        def harvest_one(vendor: VendorConfig) -> None:
            run = workers.run(vendor, mode="full")
            runs.append({k: run.get(k) for k in ("vendor", "status", "requests", "read", "upserted", "rejected")})
            log(f"  harvested {vendor.name}: {runs[-1]}")

        with HarvestWorkers(settings=settings, processes=processes, vendors=vendors) as workers, \
                ThreadPoolExecutor(processes) as pool:
            list(pool.map(harvest_one, vendors))
    finally:
        simulator.stop()
    return runs
