"""``sas snapshot``: backups of the platform's indices in a file-system snapshot repository."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from sas_core.es import make_client
from sas_core.settings import Settings

app = typer.Typer(no_args_is_help=True, help="Snapshots (backups) of the platform's indices.")
console = Console()


def _repository(settings: Settings) -> tuple[str, str]:
    name = settings.snapshot_repository or f"{settings.index_prefix}-backups"
    location = settings.snapshot_location or name
    return name, location


@app.command("create")
def create(name: Annotated[str | None, typer.Option(help="snapshot name (default: timestamped)")] = None) -> None:
    """Snapshot every index behind the platform's aliases."""
    from indexer.snapshots import create_snapshot, ensure_repository

    settings = Settings()
    es = make_client(settings, request_timeout=600)
    repository, location = _repository(settings)
    ensure_repository(es, repository=repository, location=location)
    result = create_snapshot(es, prefix=settings.index_prefix, repository=repository, snapshot=name)
    console.print(f"{result.snapshot}: {result.state}, {len(result.indices)} indices, "
                  f"{result.shards_failed} failed shards")
    if result.state != "SUCCESS":
        raise typer.Exit(1)


@app.command("list")
def list_() -> None:
    """Snapshots in the repository."""
    from indexer.snapshots import ensure_repository, list_snapshots

    settings = Settings()
    es = make_client(settings)
    repository, location = _repository(settings)
    ensure_repository(es, repository=repository, location=location)
    for snap in list_snapshots(es, repository=repository):
        console.print(f"{snap['snapshot']}  {snap['state']}  {snap.get('start_time', '')}  "
                      f"{len(snap['indices'])} indices")


@app.command("restore")
def restore(
    name: Annotated[str, typer.Argument(help="snapshot to restore")],
    replace: Annotated[bool, typer.Option("--replace", help="delete the live indices of the snapshot first")] = False,
) -> None:
    """Restore the platform's indices and aliases of a snapshot (refused over live indices unless --replace)."""
    from indexer.snapshots import ensure_repository, restore_snapshot

    settings = Settings()
    es = make_client(settings, request_timeout=600)
    repository, location = _repository(settings)
    ensure_repository(es, repository=repository, location=location)
    if replace:
        info = es.snapshot.get(repository=repository, snapshot=name).body["snapshots"][0]
        live = [i for i in info["indices"] if i.startswith(f"{settings.index_prefix}-") and es.indices.exists(index=i)]
        if live:
            es.indices.delete(index=",".join(live))
            console.print(f"deleted live indices: {', '.join(live)}")
    try:
        result = restore_snapshot(es, prefix=settings.index_prefix, repository=repository, snapshot=name)
    except RuntimeError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    console.print(f"restored {len(result.indices)} indices from {name}")
