"""``sas bench …``: the benchmark commands, delegating to the ``bench`` package (imported inside each command so
that ``sas`` starts fast). Never timed unit tests; results go to ``bench/results/``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from sas_core.settings import PROJECT_ROOT, Settings

app = typer.Typer(no_args_is_help=True, help="Benchmarks (results as JSON under bench/results/).")
console = Console()


@app.callback()
def _benchmarks() -> None:
    """Benchmarks (results as JSON under bench/results/)."""
    from bench.common import stop_children_on_sigterm

    stop_children_on_sigterm()


@app.command("harvest")
def harvest(
    places: Annotated[int, typer.Option(help="offers of the national directory")] = 300_000,
    practitioners: Annotated[int, typer.Option(help="practitioners connected to a vendor")] = 12_000,
    sos_places: Annotated[int, typer.Option(help="SOS Médecins places")] = 60,
    vendors: Annotated[int, typer.Option(help="simulated vendors")] = 20,
    interval_s: Annotated[float, typer.Option(help="incremental harvest interval (freshness)")] = 30.0,
    rounds: Annotated[int, typer.Option(help="incremental rounds measured")] = 3,
    takes_per_round: Annotated[int, typer.Option(help="slots taken at the vendors per round")] = 40,
    parallel_vendors: Annotated[int, typer.Option(help="vendors harvested at once")] = 4,
    worker_processes: Annotated[int, typer.Option(
        help="harvester worker processes (SAS_HARVEST_WORKER_PROCESSES); 0: one process, threads")] = 4,
    durability_rounds: Annotated[int, typer.Option(
        help="extra cold sweeps pairs comparing translog durability async / request (0: none)")] = 2,
    floor: Annotated[bool, typer.Option(
        help="after each cold sweep, Elasticsearch bulk-indexing the same documents alone")] = True,
    steady_state: Annotated[bool, typer.Option(
        help="a second full sweep with nothing changed: CPU per unchanged slot and writes")] = True,
    near_window_h: Annotated[float | None, typer.Option(
        help="freshness of a near tier: runs over the next N hours (default: the 48 h incremental window)")] = None,
    keep: Annotated[bool, typer.Option(help="keep the bench indices")] = False,
    output: Annotated[Path, typer.Option(help="result file")] = Path("bench/results/harvest.json"),
) -> None:
    """Harvest throughput (cold 7-day sweep) and freshness (taken slot → gone from search)."""
    from bench.harvest import BenchConfig, run_bench

    config = BenchConfig(places=places, practitioners=practitioners, sos_places=sos_places, vendors=vendors,
                         interval_s=interval_s, rounds=rounds, takes_per_round=takes_per_round,
                         parallel_vendors=parallel_vendors, worker_processes=worker_processes,
                         durability_rounds=durability_rounds, floor=floor, steady_state=steady_state,
                         near_window_h=near_window_h, keep=keep,
                         output=output)
    result = run_bench(settings=Settings(), config=config, log=console.print)
    console.print_json(json.dumps(result))


@app.command("search")
def search(
    prefix: Annotated[str | None, typer.Option(help="index prefix of the dataset (default SAS_INDEX_PREFIX)")] = None,
    prepare: Annotated[bool, typer.Option(
        help="first produce the dataset through the directory and harvest paths")] = False,
    places: Annotated[int, typer.Option(help="--prepare: practice places to generate")] = 300_000,
    gp_participation: Annotated[float, typer.Option(help="--prepare: share of liberal GPs taking part")] = 0.95,
    other_participation: Annotated[float, typer.Option(
        help="--prepare: share of other liberal doctors taking part")] = 0.65,
    vendor_share: Annotated[float, typer.Option(help="--prepare: share of participants with a vendor agenda")] = 0.97,
    queries: Annotated[int, typer.Option(help="measured queries (api and raw_es)")] = 3000,
    warmup: Annotated[int, typer.Option(help="warm-up queries, not measured")] = 300,
    clients: Annotated[int, typer.Option(help="concurrent clients")] = 16,
    think_ms: Annotated[float, typer.Option(
        "--think-ms", help="mean think time between a client's searches (0: none)")] = 500.0,
    saturation: Annotated[bool, typer.Option(help="also measure without think time (capacity)")] = True,
    fanout_queries: Annotated[int, typer.Option(help="queries sent through the live fan-out baseline")] = 320,
    skip_fanout: Annotated[bool, typer.Option(help="measure api and raw_es only")] = False,
    vendor_p50_ms: Annotated[float, typer.Option(help="simulated vendor latency: median")] = 250.0,
    vendor_p95_ms: Annotated[float, typer.Option(help="simulated vendor latency: 95th percentile")] = 1500.0,
    api_url: Annotated[str | None, typer.Option(help="an API already running (default: start `sas serve`)")] = None,
    api_workers: Annotated[int, typer.Option(help="API worker processes when the bench starts it")] = 1,
    seed: Annotated[int, typer.Option(help="seed of the query mix (and of --prepare)")] = 20240522,
    out: Annotated[Path | None, typer.Option(help="results directory")] = None,
    measure: Annotated[bool, typer.Option(
        help="measure (--no-measure with --prepare: only produce the dataset)")] = True,
) -> None:
    """Search latency at national scale: the API, Elasticsearch alone with the same bodies, and the live
    fan-out to vendors of the current national platform, on the same fixed query mix."""
    from bench.search.command import Preparation, run_search_command
    from bench.search.run import BenchConfig

    settings = Settings()
    if prefix:
        settings = settings.model_copy(update={"index_prefix": prefix})
    config = BenchConfig(queries=queries, warmup=warmup, clients=clients, think_ms=think_ms, saturation=saturation,
                         fanout_queries=fanout_queries, seed=seed, vendor_p50_ms=vendor_p50_ms,
                         vendor_p95_ms=vendor_p95_ms, api_url=api_url, api_workers=api_workers,
                         skip_fanout=skip_fanout)
    preparation = Preparation(places=places, gp_participation=gp_participation,
                              other_participation=other_participation, vendor_share=vendor_share) if prepare else None
    run_search_command(settings=settings, config=config, preparation=preparation, measure=measure,
                       out_dir=out or PROJECT_ROOT / "bench" / "results", log=console.print,
                       show_json=console.print_json)


@app.command("search-curve")
def search_curve(
    sizes: Annotated[str, typer.Option(
        help="sizes measured, comma-separated, among 1x (300,000 places), 3x (900,000), national (2,250,000)")]
        = "1x,3x,national",
    prepare: Annotated[bool, typer.Option(
        help="prepare each size's dataset first (stages kept from an earlier preparation are skipped)")] = True,
    queries: Annotated[int, typer.Option(help="measured queries (api and raw_es) at each size")] = 3000,
    warmup: Annotated[int, typer.Option(help="warm-up queries, not measured")] = 300,
    clients: Annotated[int, typer.Option(help="concurrent clients")] = 16,
    think_ms: Annotated[float, typer.Option("--think-ms", help="mean think time between a client's searches")]
        = 500.0,
    seed: Annotated[int, typer.Option(help="seed of the query mix (and of the preparations)")] = 20240522,
    out: Annotated[Path | None, typer.Option(help="results directory")] = None,
    keep_other_sizes: Annotated[bool, typer.Option(
        help="keep the points of sizes not measured this time from the previous search-curve.json")] = True,
) -> None:
    """The search benchmark at several sizes of the country (API and Elasticsearch alone, with and without think
    time), each dataset kept under its own prefix: ``search-curve.json`` and ``search-curve.png``."""
    from bench.search.curve import SIZES, run_search_curve
    from bench.search.run import BenchConfig

    names = [name.strip() for name in sizes.split(",") if name.strip()]
    unknown = [name for name in names if name not in SIZES]
    if unknown or not names:
        raise typer.BadParameter(f"unknown sizes {unknown}; known: {', '.join(SIZES)}", param_hint="--sizes")
    config = BenchConfig(queries=queries, warmup=warmup, clients=clients, think_ms=think_ms, seed=seed,
                         skip_fanout=True)
    run_search_curve(settings=Settings(), sizes=[SIZES[name] for name in names], config=config, prepare=prepare,
                     out_dir=out or PROJECT_ROOT / "bench" / "results", log=console.print,
                     keep_other_sizes=keep_other_sizes)


@app.command("directory")
def directory(
    places: Annotated[int, typer.Option(help="practice places to generate (national: 300,000)")] = 300_000,
    departement: Annotated[list[str] | None, typer.Option(
        "--departement", "-d", help="limit to these départements")] = None,
    seed: Annotated[int, typer.Option(help="generator seed")] = 20240522,
    prefix: Annotated[str | None, typer.Option(help="bench index prefix (default <SAS_INDEX_PREFIX>bench)")] = None,
    keep: Annotated[bool, typer.Option(help="keep the bench indices")] = False,
    output: Annotated[Path, typer.Option(help="result file")] = Path("bench/results/directory.json"),
) -> None:
    """Directory load end to end: generate the national files, load them (parse → geocode → bulk), places/s."""
    from bench.directory import run_directory_bench

    result = run_directory_bench(settings=Settings(), places=places, departements=departement or None, seed=seed,
                                 prefix=prefix, keep=keep, output=output, log=console.print)
    console.print_json(json.dumps(result))
    if not result["meets_target"]:
        console.print(f"[yellow]below the target of {result['target_places_per_s']:,} places/s[/yellow]")


@app.command("addresses")
def addresses(
    places: Annotated[int, typer.Option(
        help="practice places to generate (their addresses make the BAN files)")] = 300_000,
    departement: Annotated[list[str] | None, typer.Option(
        "--departement", "-d", help="limit to these départements")] = None,
    seed: Annotated[int, typer.Option(help="generator seed")] = 20240522,
    prefix: Annotated[str | None, typer.Option(help="bench index prefix (default <SAS_INDEX_PREFIX>bench)")] = None,
    keep: Annotated[bool, typer.Option(help="keep the bench indices")] = False,
    output: Annotated[Path, typer.Option(help="result file")] = Path("bench/results/addresses.json"),
) -> None:
    """BAN address load rate (lines/s), then a directory load: share of places at each precision."""
    from bench.addresses import run_addresses_bench

    result = run_addresses_bench(settings=Settings(), places=places, departements=departement or None, seed=seed,
                                 prefix=prefix, keep=keep, output=output, log=console.print)
    console.print_json(json.dumps(result))
    if not result["meets_target"]:
        console.print(f"[yellow]below the target of {result['target_lines_per_s']:,} lines/s[/yellow]")


@app.command("api-cpu")
def api_cpu(
    prefix: Annotated[str | None, typer.Option(
        help="index prefix of an existing search dataset, read only (default SAS_INDEX_PREFIX)")] = None,
    queries: Annotated[int, typer.Option(help="searches per measured round")] = 500,
    warmup: Annotated[int, typer.Option(help="warm-up searches, not measured")] = 300,
    rounds: Annotated[int, typer.Option(help="measured rounds (the median is reported)")] = 3,
    clients: Annotated[int, typer.Option(help="concurrent clients, no think time")] = 4,
    seed: Annotated[int, typer.Option(help="seed of the query mix (as sas bench search)")] = 20240522,
    output: Annotated[Path, typer.Option(help="result file")] = Path("bench/results/api_cpu.json"),
) -> None:
    """The API's own CPU time per search (and Elasticsearch's), on the query mix of `sas bench search`."""
    from bench.api_cpu import ApiCpuConfig, run_api_cpu_bench, write_api_cpu_result

    settings = Settings()
    if prefix:
        settings = settings.model_copy(update={"index_prefix": prefix})
    config = ApiCpuConfig(queries=queries, warmup=warmup, rounds=rounds, clients=clients, seed=seed)
    result = run_api_cpu_bench(settings=settings, config=config, log=console.print)
    console.print(f"written {write_api_cpu_result(result, path=output)}")
    console.print_json(json.dumps({k: result[k] for k in ("api_cpu_ms_per_search_median",
                                                         "es_cpu_ms_per_search_median", "api_share_of_cpu")}))
