"""``sas declarations``: maintenance of the declarations index."""

from __future__ import annotations

import typer
from rich.console import Console

from sas_core.errors import SasError
from sas_core.settings import Settings

app = typer.Typer(no_args_is_help=True, help="Declarations (unavailability, regulators' reports).")
console = Console()


@app.command("refile-reports")
def refile_reports() -> None:
    """File regulators' reports under their offer's territory (earlier versions filed them under the
    author's territory, out of the practitioner's own SAS's sight). Safe to run again."""
    from sas_core.es import make_client
    from search_api.executor import Executor
    from search_api.workflow.declarations import DeclarationService
    from search_api.workflow.store import DocStore

    settings = Settings()
    es = make_client(settings)
    service = DeclarationService(store=DocStore(Executor(es=es, prefix=settings.index_prefix)))
    try:
        moved = service.refile_reports()
    except SasError as exc:
        console.print(f"[red]{exc.message}[/red] (is SAS_INDEX_PREFIX {settings.index_prefix!r} set up?)")
        raise typer.Exit(1) from exc
    for row in moved:
        console.print(f"{row['id']} (offer {row['offer_id']}): {row['from']} → {row['to']}")
    console.print(f"{len(moved)} report(s) refiled")


@app.command("refile-unavailability")
def refile_unavailability() -> None:
    """File practitioners' "every place" unavailability declared without territory (as earlier versions
    did) under the territories of their places, with the directory's name. Safe to run again."""
    from sas_core.es import make_client
    from search_api.executor import Executor
    from search_api.workflow.declarations import DeclarationService
    from search_api.workflow.store import DocStore

    settings = Settings()
    service = DeclarationService(store=DocStore(Executor(es=make_client(settings), prefix=settings.index_prefix)))
    try:
        changed = service.refile_unavailability()
    except SasError as exc:
        console.print(f"[red]{exc.message}[/red] (is SAS_INDEX_PREFIX {settings.index_prefix!r} set up?)")
        raise typer.Exit(1) from exc
    for row in changed:
        territory = row["territory"] if isinstance(row["territory"], str) else ", ".join(row["territory"])
        console.print(f"{row['id']}: {territory}")
    console.print(f"{len(changed)} declaration(s) refiled")
