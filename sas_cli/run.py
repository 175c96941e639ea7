"""``sas demo load`` and ``sas run``: what ``make run`` does after installing and starting Elasticsearch."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console

from sas_core.settings import DirectorySettings, HarvestSettings, Settings

demo_app = typer.Typer(no_args_is_help=True, help="The demo data set.")
console = Console()

#: Demo territories: Agen (the specification's examples), Bordeaux, Hauts-de-Seine, Paris, Lyon.
DEMO_DEPARTEMENTS = ["47", "33", "92", "75", "69"]
DEMO_PLACES = 6000


def _demo_dir(settings: Settings) -> Path:
    return settings.cache_dir / "demo"


def _offer_count(settings: Settings, index: str = "offers") -> int:
    """Documents in ``index`` (a demo loaded before the address base came is loaded again, with it)."""
    from mappings.registry import alias_name
    from sas_core.es import make_client

    es = make_client(settings)
    return es.count(index=alias_name(settings.index_prefix, index))["count"]


@demo_app.command("load")
def demo_load(
    places: Annotated[int, typer.Option(help="practice places to generate")] = DEMO_PLACES,
    departement: Annotated[list[str] | None, typer.Option("--departement", "-d", help="départements")] = None,
    reload: Annotated[bool, typer.Option("--reload", help="generate and load again even if offers exist")] = False,
) -> None:
    """Generate a realistic directory of a few départements (real formats) and load it, once."""
    from indexer.addresses import load_addresses
    from indexer.directory import load_directory
    from sas_core.es import make_client
    from simulator.generate.directory import generate_directory

    settings = Settings()
    if not reload and _offer_count(settings) > 0 and _offer_count(settings, "addresses") > 0:
        console.print("demo directory already loaded (use --reload to load it again)")
        return
    out = _demo_dir(settings)
    generated = generate_directory(out_dir=out, places=places, departements=departement or DEMO_DEPARTEMENTS)
    console.print(f"generated {generated.places} practice places in {generated.rpps.parent}")
    es = make_client(settings, request_timeout=120)
    # The invented addresses first, through the real BAN loading path: the directory load then places
    # each practice place at its address, so the addresses must be there before it.
    addresses = load_addresses(settings=settings.slice(DirectorySettings), es=es, paths=[*generated.addresses])
    console.print(f"addresses: {addresses.addresses} numbers and {addresses.streets} streets loaded")
    summary = load_directory(settings=settings.slice(DirectorySettings), es=es,
                             rpps_path=generated.rpps, finess_path=generated.finess,
                             participation_path=generated.participation, full=True, progress=False)
    console.print(f"loaded: {summary}")


def _start_simulator(settings: Settings, vendors_file: Path) -> subprocess.Popen:
    """The vendor simulator in its own process (it builds agendas from the loaded offers)."""
    log = (_demo_dir(settings) / "simulator.log").open("ab")
    vendors_file.unlink(missing_ok=True)
    process = subprocess.Popen(
        [sys.executable, "-m", "sas_cli.main", "simulate", "vendors", "--vendors-out", str(vendors_file)],
        stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy(),
    )
    url = f"http://{settings.simulator_host}:{settings.simulator_port}/_admin/healthz"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the vendor simulator exited; see {log.name}")
        try:
            if httpx.get(url, timeout=2).status_code == 200 and vendors_file.is_file():
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    process.terminate()
    raise RuntimeError(f"the vendor simulator did not start; see {log.name}")


def _first_harvest(settings: Settings) -> None:
    """Harvest every vendor once so that the first search already finds slots."""
    from indexer.harvest import Harvester
    from sas_core.es import make_client

    harvester = Harvester(es=make_client(settings, request_timeout=120), settings=settings.slice(HarvestSettings))
    total = 0
    for vendor in harvester.vendors:
        if vendor.enabled:
            doc = harvester.run(vendor, mode="full")
            total += doc["upserted"] + doc["unchanged"]
    console.print(f"first harvest: {total} slots from {len(harvester.vendors)} simulated vendors")


def port_clash(*, host: str, port: int) -> bool:
    """Whether ``host:port`` is already taken: bound like uvicorn binds it (``SO_REUSEADDR``, so a socket
    left in TIME_WAIT by an earlier run does not count), then released at once."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def check_ports(wanted: list[tuple[str, str, int, str]]) -> None:
    """Stop with one line naming the port and the setting that moves it when a port is taken (before
    anything starts: a clash used to end in a traceback, after the simulator and the first harvest)."""
    for what, host, port, setting in wanted:
        if port_clash(host=host, port=port):
            typer.echo(f"sas run: port {port} ({what}, {host}) is already in use: stop what uses it or choose "
                       f"another port with {setting}", err=True)
            raise typer.Exit(code=1)


def run(
    host: Annotated[str | None, typer.Option(help="listen address")] = None,
    port: Annotated[int | None, typer.Option(help="listen port")] = None,
    no_simulator: Annotated[bool, typer.Option("--no-simulator", help="do not start the vendor simulator")] = False,
) -> None:
    """Start the vendor simulator, harvest once, then serve the API and the scheduler (prints URL + token)."""
    import uvicorn

    from indexer.scheduler import build_scheduler
    from sas_core.es import make_client
    from sas_core.logging import configure_logging
    from search_api.app import create_app
    from search_api.auth import issue_dev_token

    settings = Settings()
    host = host or settings.api_host
    port = port or settings.api_port
    wanted = [("API", host, port, "SAS_API_PORT=… or --port")]
    if not no_simulator:
        wanted.append(("vendor simulator", settings.simulator_host, settings.simulator_port, "SAS_SIMULATOR_PORT=…"))
    check_ports(wanted)
    simulator = None
    if not no_simulator:
        vendors_file = settings.vendors_file or (_demo_dir(settings) / "vendors.yaml")
        _demo_dir(settings).mkdir(parents=True, exist_ok=True)
        simulator = _start_simulator(settings, vendors_file)
        os.environ["SAS_VENDORS_FILE"] = str(vendors_file)
        settings = settings.model_copy(update={"vendors_file": vendors_file})
        _first_harvest(settings)
    territories = [f"SAS-{d}" for d in DEMO_DEPARTEMENTS]
    token = issue_dev_token(settings=settings, roles=["osnp", "regulator"], territories=territories,
                            sub="demo-regulator", name="Régulateur démo") if settings.auth_mode == "dev" else None
    base = settings.public_base_url or f"http://{host}:{port}"
    console.rule("SAS platform")
    console.print(f"Web interface : {base}/")
    console.print(f"API docs      : {base}/docs")
    console.print(f"Readiness     : {base}/readyz")
    if token:
        console.print("Dev token (osnp + regulator, demo territories), for `Authorization: Bearer …`:")
        typer.echo(token)
        console.print(f"Try: curl -H \"Authorization: Bearer $TOKEN\" '{base}/v1/search?q=47000&specialty=SM54'")
    log_file = _demo_dir(settings) / "sas-run.log"
    console.print(f"Logs          : {log_file} (warnings and errors also here)")
    console.rule()
    # The periodic harvests log at INFO every few minutes: to the file, so that the URL and the token
    # above stay on screen; what needs attention (warnings, errors) still reaches the console.
    configure_logging(level=settings.log_level, json_format=settings.log_json, log_file=log_file,
                      console_level="WARNING")
    scheduler = build_scheduler(settings=settings, es=make_client(settings))
    scheduler.start()
    try:
        uvicorn.run(create_app(settings), host=host, port=port, log_config=None, access_log=False)
    finally:
        scheduler.shutdown(wait=False)
        if simulator is not None:
            simulator.terminate()
            simulator.wait(timeout=10)
