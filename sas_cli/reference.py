"""``sas reference …``: the reference tables (communes gazetteer, TRE_R38) for real deployments."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from sas_core.errors import SasError
from sas_core.settings import Settings

app = typer.Typer(no_args_is_help=True, help="Reference tables (La Poste / INSEE communes, TRE_R38).")
console = Console()


@app.command("download")
def download(
    to: Annotated[Path | None, typer.Option("--to", help="reference-data directory "
                                               "(default SAS_REFERENCE_DATA_DIR)")] = None,
    laposte_url: Annotated[str | None, typer.Option(help="La Poste postcodes base (CSV)")] = None,
    communes_url: Annotated[str | None, typer.Option(help="INSEE / Etalab communes list (JSON)")] = None,
    tre_r38_url: Annotated[str | None, typer.Option(help="ANS TRE_R38 FHIR CodeSystem (JSON)")] = None,
) -> None:
    """Download the official communes and TRE_R38 files and build the tables the platform reads.

    Needs internet access (not available on the development machines, which use the project's own copy in
    connectors/reference_data/). Pass --to a folder of the deployment and point SAS_REFERENCE_DATA_DIR at it.
    """
    from connectors.reference import download_reference

    target = to or Settings().reference_data_dir
    if target is None:
        console.print("[red]error:[/red] no reference-data directory: pass --to or set SAS_REFERENCE_DATA_DIR")
        raise typer.Exit(2)
    sources = {k: v for k, v in (("laposte", laposte_url), ("communes", communes_url),
                                 ("tre_r38", tre_r38_url)) if v}
    try:
        result = download_reference(reference_dir=target, sources=sources)
    except SasError as exc:
        console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(1) from exc
    console.print_json(json.dumps(result))
