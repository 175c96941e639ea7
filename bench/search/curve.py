"""``sas bench search-curve``: the same search measurement at several sizes of the country, each dataset kept
under its own prefix (prepared once through the real paths, ``bench.search.prepare``), the figures side by
side in ``search-curve.json`` and plotted against the number of slots in ``search-curve.png``; when the
national size is not among them, its latency is extrapolated from the curve."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import write_result
from bench.search.prepare import prepare_dataset
from bench.search.report import write_result as write_search_result
from bench.search.run import BenchConfig, run_search_bench
from sas_core.clock import iso, utcnow
from sas_core.settings import Settings


@dataclass(frozen=True)
class CurveSize:
    """One point of the curve: its name, the prefix its dataset is kept under, the places generated."""

    name: str
    prefix: str
    places: int


#: 1× is the benchmark's historical dataset (≈ 306 k offers, ≈ 3 M slots over 7 days); national is France
#: (≈ 2.3 M offers, ≈ 20 M slots): the generator's offers follow its places about one for one.
SIZES = {
    "1x": CurveSize("1x", "bscale1x", 300_000),
    "3x": CurveSize("3x", "bscale3x", 900_000),
    "national": CurveSize("national", "bnational", 2_250_000),
}
#: France over 7 days, the size the targets are stated for.
NATIONAL_SLOTS = 20_000_000
TARGETS = {"api_p95_ms_max": 50, "api_over_raw_p95_max": 1.3, "api_over_raw_capacity_min": 0.75}


def _point(size: CurveSize, result: dict[str, Any]) -> dict[str, Any]:
    """The figures of one size the curve keeps (the full result is in its own ``search-<time>.json``)."""
    point: dict[str, Any] = {"size": size.name, "prefix": size.prefix, "places": size.places,
                             "measured_at": iso(utcnow()), "dataset": result["dataset"],
                             "storage": result.get("storage"), "machine": result["machine"]}
    for path in ("api", "raw_es"):
        point[path] = {k: result[path][k] for k in ("p50_ms", "p95_ms", "p99_ms", "qps", "errors")}
    saturation = result.get("saturation")
    if saturation:
        point["capacity_qps"] = {"api": saturation["api"]["qps"], "raw_es": saturation["raw_es"]["qps"]}
        point["capacity_ratio"] = round(saturation["api"]["qps"] / saturation["raw_es"]["qps"], 3)
    point["api_over_raw_p95"] = round(result["api"]["p95_ms"] / result["raw_es"]["p95_ms"], 3)
    if "preparation" in result:
        point["preparation"] = {k: result["preparation"].get(k) for k in ("timings", "skipped")}
    return point


def merge_points(previous: Sequence[dict[str, Any]], measured: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The points just measured, with those of the other sizes kept from the previous curve (sizes are
    measured one at a time when their datasets are ready at different times), smallest first."""
    names = {p["size"] for p in measured}
    kept = [{k: v for k, v in p.items() if k != "targets_met"} for p in previous if p.get("size") not in names]
    return sorted([*kept, *measured], key=lambda p: p["dataset"]["slots_next_7_days"])


def fit_line(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    """Least-squares slope and intercept of ``ys`` against ``xs`` (two points or more)."""
    n = len(xs)
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    var = sum((x - mean_x) ** 2 for x in xs)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / var if var else 0.0
    return slope, mean_y - slope * mean_x


def extrapolate(points: list[dict[str, Any]], *, slots: int = NATIONAL_SLOTS) -> dict[str, Any] | None:
    """Latencies at ``slots`` on the straight line through the measured points (slots over 7 days), with the
    targets they would meet; ``None`` below two sizes."""
    if len(points) < 2:
        return None
    xs = [p["dataset"]["slots_next_7_days"] / 1e6 for p in points]
    out: dict[str, Any] = {"slots_next_7_days": slots, "method": "least squares, linear in slots"}
    for path in ("api", "raw_es"):
        for q in ("p50_ms", "p95_ms", "p99_ms"):
            slope, intercept = fit_line(xs, [p[path][q] for p in points])
            out.setdefault(path, {})[q] = round(intercept + slope * slots / 1e6, 1)
            out[path].setdefault("ms_per_million_slots", {})[q] = round(slope, 2)
    out["api_over_raw_p95"] = round(out["api"]["p95_ms"] / out["raw_es"]["p95_ms"], 2)
    return out


def _judge(point: dict[str, Any]) -> dict[str, Any]:
    return {"api_p95_met": point["api"]["p95_ms"] <= TARGETS["api_p95_ms_max"],
            "api_over_raw_p95_met": point["api_over_raw_p95"] <= TARGETS["api_over_raw_p95_max"],
            "capacity_met": point.get("capacity_ratio", 0) >= TARGETS["api_over_raw_capacity_min"]}


def plot_curve(points: list[dict[str, Any]], *, path: Path, extrapolated: dict[str, Any] | None) -> Path:
    """Latency percentiles (operators' load) and capacity against the slots of each size, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [p["dataset"]["slots_next_7_days"] / 1e6 for p in points]
    figure, (latency, capacity) = plt.subplots(1, 2, figsize=(12, 4.8))
    styles = {"api": ("API (GET /v1/search)", "tab:blue"), "raw_es": ("Elasticsearch alone", "tab:orange")}
    for path_name, (label, colour) in styles.items():
        for q, line in (("p50_ms", ":"), ("p95_ms", "-"), ("p99_ms", "--")):
            latency.plot(xs, [p[path_name][q] for p in points], line, marker="o", color=colour,
                         label=f"{label} {q[:3]}")
        if extrapolated:
            latency.plot([xs[-1], extrapolated["slots_next_7_days"] / 1e6],
                         [points[-1][path_name]["p95_ms"], extrapolated[path_name]["p95_ms"]], "-", color=colour,
                         alpha=0.3)
    latency.axhline(TARGETS["api_p95_ms_max"], color="grey", linewidth=0.8, label="target API p95")
    latency.set_xlabel("free slots over 7 days (millions)")
    latency.set_ylabel("latency (ms), 16 clients thinking 500 ms")
    latency.legend(fontsize=7)
    latency.grid(alpha=0.3)
    for path_name, (label, colour) in styles.items():
        capacity.plot(xs, [p.get("capacity_qps", {}).get(path_name, 0) for p in points], marker="o", color=colour,
                      label=label)
    capacity.set_xlabel("free slots over 7 days (millions)")
    capacity.set_ylabel("searches/s without think time (capacity)")
    capacity.legend(fontsize=8)
    capacity.grid(alpha=0.3)
    figure.suptitle("Search cost against the size of the country (2 cores, one Elasticsearch node)")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def run_search_curve(*, settings: Settings, sizes: Sequence[CurveSize], config: BenchConfig, prepare: bool,
                     out_dir: Path, log: Callable[[str], None], keep_other_sizes: bool = True) -> dict[str, Any]:
    """Prepare (kept stages skipped) and measure every size in turn; write the curve JSON and PNG (with the
    points of sizes not measured this time kept from the previous curve, unless ``keep_other_sizes`` is off)."""
    curve_path = out_dir / "search-curve.json"
    previous = (json.loads(curve_path.read_text()).get("points", [])
                if keep_other_sizes and curve_path.exists() else [])
    points = []
    for size in sizes:
        sized = settings.model_copy(update={"index_prefix": size.prefix})
        prepared = None
        if prepare:
            work_dir = settings.cache_dir / "bench" / f"directory-{size.prefix}"
            log(f"[{size.name}] preparing {size.places:,} places under {size.prefix!r} (kept stages skipped)…")
            prepared = prepare_dataset(settings=sized, places=size.places, work_dir=work_dir, config=config, log=log)
        log(f"[{size.name}] measuring…")
        result = run_search_bench(settings=sized, config=config, log=log)
        if prepared is not None:
            result["preparation"] = prepared
        write_search_result(result, out_dir=out_dir)
        points.append(_point(size, result))
        log(f"[{size.name}] {json.dumps({k: points[-1][k] for k in ('api', 'raw_es')})}")
    points = merge_points(previous, points)
    national = [p for p in points if p["size"] == "national"]
    extrapolated = None if national else extrapolate(points)
    curve = {"benchmark": "search-curve", "finished_at": iso(utcnow()), "targets": TARGETS,
             "load": {"clients": config.clients, "think_ms": config.think_ms, "queries": config.queries,
                      "seed": config.seed},
             "points": [{**p, "targets_met": _judge(p)} for p in points], "national_extrapolated": extrapolated}
    write_result(curve, curve_path)
    plot_curve(points, path=out_dir / "search-curve.png", extrapolated=extrapolated)
    log(f"written {out_dir / 'search-curve.json'} and {out_dir / 'search-curve.png'}")
    return curve
