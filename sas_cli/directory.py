"""``sas directory …``: generate national-format files, load them, or read the Annuaire Santé FHIR API."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from sas_core.errors import SasError
from sas_core.settings import DirectorySettings, Settings

app = typer.Typer(no_args_is_help=True, help="National directory (RPPS, FINESS, Annuaire Santé FHIR).")
console = Console()


def _fail(message: str, code: int = 1) -> NoReturn:
    console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code)


def print_summary(summary) -> None:
    """The final summary of a load: counts, reasons, precision, duration and rate."""
    data = summary.to_dict()
    table = Table("what", "count", title=f"directory load {data['run_id']} ({data['mode']}): {data['status']}")
    for key in ("lines_read", "places", "created", "updated", "unchanged", "deleted", "kept_rejected",
                "slots_removed", "failed", "rejected", "rejected_unkeyed", "not_geocoded"):
        table.add_row(key.replace("_", " "), f"{data[key]:,}")
    for kind, count in data["kinds"].items():
        table.add_row(f"  offers: {kind}", f"{count:,}")
    for reason, count in data["rejected_by_reason"].items():
        table.add_row(f"  rejected: {reason}", f"{count:,}")
    for reason, count in data["not_geocoded_by_reason"].items():
        table.add_row(f"  not geocoded: {reason}", f"{count:,}")
    for precision, count in data["geo_precision"].items():
        table.add_row(f"  geocoded: {precision}", f"{count:,}")
    table.add_row("duration", f"{data['duration_s']:.1f} s")
    table.add_row("rate", f"{data['places_per_s']:,.0f} places/s")
    console.print(table)


@app.command("generate")
def generate(
    out: Annotated[Path | None, typer.Option("--out", help="directory to write the files into "
                                                "(default <SAS_CACHE_DIR>/directory)")] = None,
    places: Annotated[int, typer.Option(help="practice places, 100 to 2,500,000")] = 5000,
    departement: Annotated[list[str] | None, typer.Option("--departement", "-d",
                                                          help="limit to these départements (repeatable)")] = None,
    seed: Annotated[int, typer.Option(help="random seed (same seed → same files)")] = 20240522,
    date: Annotated[str | None, typer.Option(help="extraction date YYYY-MM-DD (default: today)")] = None,
    zip_rpps: Annotated[bool, typer.Option("--zip", help="write the RPPS file inside its published zip")] = False,
) -> None:
    """Write realistic RPPS, FINESS, SAS participation and BAN address files in the real national formats."""
    from simulator.generate.directory import generate_directory

    settings = Settings()
    moment = None
    if date:
        try:
            moment = datetime.strptime(date, "%Y-%m-%d").replace(tzinfo=timezone.utc)
        except ValueError:
            _fail("--date must be YYYY-MM-DD", 2)
    try:
        result = generate_directory(out_dir=out or settings.cache_dir / "directory", places=places,
                                    departements=departement or None, seed=seed,
                                    reference_dir=settings.reference_data_dir, extracted_at=moment,
                                    zip_rpps=zip_rpps)
    except (ValueError, SasError) as exc:
        _fail(getattr(exc, "message", None) or str(exc), 2)
    console.print_json(json.dumps(result.to_dict()))


@app.command("load")
def load(
    rpps: Annotated[Path, typer.Option("--rpps", help="PS_LibreAcces_Personne_activite_*.txt (or its zip)")],
    finess: Annotated[Path | None, typer.Option("--finess", help="etalab-cs1100507-stock-*.csv")] = None,
    participation: Annotated[Path | None, typer.Option("--participation",
                                                          help="SAS participation companion CSV")] = None,
    incremental: Annotated[bool, typer.Option("--incremental",
                                              help="only add / update: never remove offers")] = False,
    threshold: Annotated[float | None, typer.Option(help="max rejected share (default "
                                                       "SAS_DIRECTORY_REJECT_THRESHOLD)")] = None,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
) -> None:
    """Parse → geocode → bulk index. A full load (default) removes offers gone from the source."""
    from indexer.directory import load_directory
    from sas_core.es import make_client

    settings = Settings()
    try:
        summary = load_directory(settings=settings.slice(DirectorySettings),
                                 es=make_client(settings, request_timeout=120),
                                 rpps_path=rpps, finess_path=finess, participation_path=participation,
                                 full=not incremental, progress=progress and not as_json, threshold=threshold)
    except SasError as exc:
        _fail(exc.message)
    if as_json:
        console.print_json(json.dumps(summary.to_dict()))
    else:
        print_summary(summary)
    if summary.status != "success":
        raise typer.Exit(1)


@app.command("fhir")
def fhir(
    url: Annotated[str | None, typer.Option(help="FHIR base URL (default SAS_ANNUAIRE_FHIR_URL)")] = None,
    since: Annotated[str | None, typer.Option(help="only resources updated since (ISO date or instant)")] = None,
    full: Annotated[bool, typer.Option("--full", help="read everything and remove offers gone from the API")] = False,
    participation: Annotated[Path | None, typer.Option("--participation")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
) -> None:
    """Load practice places from the Annuaire Santé FHIR API (API key: SAS_ANNUAIRE_FHIR_API_KEY)."""
    from indexer.directory import load_directory_fhir
    from sas_core.es import make_client

    settings = Settings()
    moment = None
    if since:
        try:
            moment = datetime.fromisoformat(since.replace("Z", "+00:00"))
        except ValueError:
            _fail("--since must be an ISO date or instant", 2)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
    try:
        summary = load_directory_fhir(settings=settings.slice(DirectorySettings),
                                      es=make_client(settings, request_timeout=120),
                                      base_url=url, since=moment, full=full, participation_path=participation)
    except SasError as exc:
        _fail(exc.message)
    if as_json:
        console.print_json(json.dumps(summary.to_dict()))
    else:
        print_summary(summary)
    if summary.status != "success":
        raise typer.Exit(1)
