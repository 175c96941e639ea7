"""``sas simulate vendors``: run the vendor simulator (the vendor side of the SAS FHIR specification)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.console import Console

from sas_core.settings import Settings

app = typer.Typer(no_args_is_help=True, help="Simulated external systems for demos, tests and benchmarks.")
console = Console()


def vendors_yaml(*, names: list[str], public_url: str, use_cases: dict[str, list[str]] | None = None,
                 https_url: str | None = None, tls: dict | None = None, every_min: float = 2.0) -> dict:
    """A vendors file (SAS_VENDORS_FILE) whose vendors are the simulator's (rosters come from the offers'
    ``sas.vendor``)."""
    vendors = []
    for name in names:
        base = (https_url or public_url).rstrip("/")
        entry = {"name": name, "base_url": f"{base}/{name}/fhir",
                 "use_cases": (use_cases or {}).get(name, ["ps", "cpts", "sos"]),
                 "timeout_s": 7, "concurrency": 4, "rate_limit_per_s": 50, "incremental_every_min": every_min}
        if tls:
            entry["tls"] = tls
        vendors.append(entry)
    return {"vendors": vendors}


@app.command("vendors")
def vendors(
    host: Annotated[str | None, typer.Option(help="listen address")] = None,
    port: Annotated[int | None, typer.Option(help="HTTP port (default SAS_SIMULATOR_PORT)")] = None,
    https_port: Annotated[int | None, typer.Option("--https-port", help="also serve HTTPS with mutual TLS")] = None,
    tls_cert: Annotated[Path | None, typer.Option("--tls-cert", help="server certificate (PEM)")] = None,
    tls_key: Annotated[Path | None, typer.Option("--tls-key", help="server key (PEM)")] = None,
    client_ca: Annotated[Path | None, typer.Option("--client-ca", help="CA of accepted client certificates")] = None,
    vendor: Annotated[list[str] | None, typer.Option(
        "--vendor", help="only these vendors (default: every vendor named by offers)")] = None,
    vendors_out: Annotated[Path | None, typer.Option(
        "--vendors-out", "--editors-out",
        help="write a vendors file (SAS_VENDORS_FILE) pointing at this simulator")] = None,
    taken_share: Annotated[float, typer.Option(help="share of free slots that get taken as time passes")] = 0.3,
) -> None:
    """Serve the vendors named in the offers index (``sas.vendor``), with agendas built from those offers."""
    from sas_core.es import make_client
    from simulator.app import Simulator
    from simulator.roster import load_rosters
    from simulator.server import ServerTls, serve

    settings = Settings()
    host = host or settings.simulator_host
    port = port or settings.simulator_port
    from elastic_transport import TransportError
    from elasticsearch import NotFoundError

    try:
        rosters = load_rosters(make_client(settings, request_timeout=120), prefix=settings.index_prefix,
                               vendors=vendor or None)
    except NotFoundError:
        console.print("[yellow]the offers index does not exist yet (`sas setup`, then load the directory)[/yellow]")
        rosters = {}
    except TransportError as exc:
        console.print(f"[red]error:[/red] Elasticsearch unreachable at {settings.es_url}: {exc}")
        raise typer.Exit(1) from exc
    if not rosters:
        from simulator.demo_vendors import DEMO_VENDOR_IDS

        console.print("[yellow]no offer names a vendor (sas.vendor): load the directory first (`sas demo load`);"
                      f" serving empty vendors {', '.join(DEMO_VENDOR_IDS[:3])}…[/yellow]")
        from simulator.roster import Roster

        rosters = {name: Roster() for name in (vendor or DEMO_VENDOR_IDS)}
    public_url = f"http://{host}:{port}"
    simulator = Simulator(rosters, public_url=public_url, taken_share=taken_share)
    tls = None
    if https_port is not None:
        if not (tls_cert and tls_key and client_ca):
            console.print("[red]error:[/red] --https-port needs --tls-cert, --tls-key and --client-ca")
            raise typer.Exit(2)
        tls = ServerTls(tls_cert, tls_key, client_ca)
    if vendors_out is not None:
        use_cases = {name: (["ps", "cpts"] if r.practitioners else []) + (["sos"] if r.associations else [])
                     for name, r in rosters.items()}
        use_cases = {k: v or ["ps", "cpts", "sos"] for k, v in use_cases.items()}
        vendors_out.parent.mkdir(parents=True, exist_ok=True)
        vendors_out.write_text(yaml.safe_dump(vendors_yaml(names=sorted(rosters), public_url=public_url,
                                                           use_cases=use_cases), sort_keys=False))
        console.print(f"vendors file written to {vendors_out} (set SAS_VENDORS_FILE={vendors_out})")
    total = sum(len(r) for r in rosters.values())
    console.print(f"simulating {len(rosters)} vendor(s), {total} agenda owner(s) at {public_url}"
                  + (f" and https://{host}:{https_port} (mutual TLS)" if https_port else ""))
    serve(simulator, host=host, port=port, https_port=https_port, tls=tls)
