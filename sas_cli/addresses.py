"""``sas addresses load``: the national address base (BAN export files) into the ``addresses`` index."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from sas_core.errors import SasError
from sas_core.settings import DirectorySettings, Settings

app = typer.Typer(no_args_is_help=True, help="The national address base (BAN) in the addresses index.")
console = Console()


@app.command("load")
def load(
    files: Annotated[list[Path], typer.Argument(help="adresses-<dép>.csv or .csv.gz files of adresse.data.gouv.fr")],
    threshold: Annotated[float | None, typer.Option(help="max rejected share per file (default "
                                                       "SAS_ADDRESSES_REJECT_THRESHOLD)")] = None,
    prune: Annotated[bool, typer.Option("--prune", help="the files are their départements' whole base: delete "
                                        "what they no longer have (capped by SAS_ADDRESSES_MAX_DELETE_SHARE)")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
) -> None:
    """Stream the files into the index (BAN id = document id: a reload overwrites, never duplicates)."""
    from indexer.addresses import load_addresses
    from sas_core.es import make_client

    settings = Settings()
    try:
        summary = load_addresses(settings=settings.slice(DirectorySettings),
                                 es=make_client(settings, request_timeout=120), paths=list(files),
                                 threshold=threshold, prune=prune)
    except SasError as exc:
        console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(2) from None
    if as_json:
        console.print_json(json.dumps(summary.to_dict()))
    else:
        console.print(f"{summary.lines_read:,} lines read: {summary.addresses:,} addresses and {summary.streets:,} "
                      f"streets written, {summary.deleted:,} deleted, "
                      f"{summary.rejected:,} rejected {dict(summary.rejected_by_reason)}, "
                      f"{summary.duration_s:.1f}s ({summary.lines_per_s:,.0f} lines/s)")
    if summary.status != "success":
        raise typer.Exit(1)
