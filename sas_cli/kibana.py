"""``sas kibana import``: the platform's Kibana data views, visualisations and dashboards.

The assets live in ``mappings/kibana/*.ndjson`` (saved-objects export format, one object per line).
Their index names and object ids carry the placeholder ``__SAS_PREFIX__`` (e.g. the slots data view's
title is ``__SAS_PREFIX__-slots``): the import rewrites it to the configured ``SAS_INDEX_PREFIX``, so
the data views name the real aliases and several platforms can share one Kibana.

They are sent to Kibana's saved-objects import API (``POST /api/saved_objects/_import?overwrite=true``,
multipart upload of the NDJSON file, with the ``kbn-xsrf`` header Kibana requires on every write).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console

from sas_core.errors import BackendUnavailable, ConfigurationError
from sas_core.settings import Settings

#: Stands for the index prefix in the NDJSON assets (titles, ids and references).
PREFIX_PLACEHOLDER = "__SAS_PREFIX__"

app = typer.Typer(no_args_is_help=True, help="Kibana assets: data views on the aliases, visualisations, dashboards.")
console = Console()


@dataclass
class ImportResult:
    """What Kibana answered: objects imported, and the failures (type, id, reason)."""

    success: bool
    success_count: int
    errors: list[dict] = field(default_factory=list)


def asset_files() -> list[Path]:
    """The packaged NDJSON files, in a stable order."""
    folder = resources.files("mappings").joinpath("kibana")
    return sorted(Path(str(entry)) for entry in folder.iterdir() if entry.name.endswith(".ndjson"))


def render_assets(*, prefix: str, files: list[Path] | None = None) -> bytes:
    """The NDJSON to upload: every asset file, placeholder replaced by ``prefix``, one object per line."""
    lines: list[str] = []
    for path in files if files is not None else asset_files():
        text = path.read_text(encoding="utf-8").replace(PREFIX_PLACEHOLDER, prefix)
        lines += [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise ConfigurationError("no Kibana asset found (mappings/kibana/*.ndjson)")
    return ("\n".join(lines) + "\n").encode("utf-8")


def _auth_headers(settings: Settings) -> tuple[dict[str, str], tuple[str, str] | None]:
    headers = {"kbn-xsrf": "sas-platform"}
    if settings.kibana_api_key is not None:
        headers["Authorization"] = f"ApiKey {settings.kibana_api_key.get_secret_value()}"
        return headers, None
    if settings.kibana_username and settings.kibana_password is not None:
        return headers, (settings.kibana_username, settings.kibana_password.get_secret_value())
    return headers, None


def import_assets(*, settings: Settings, ndjson: bytes, overwrite: bool = True,
                  transport: httpx.BaseTransport | None = None) -> ImportResult:
    """Upload ``ndjson`` to Kibana's saved-objects import API; raise when Kibana cannot be reached or
    refuses the request as a whole (per-object failures are in the result)."""
    base = settings.kibana_url.rstrip("/")
    if settings.kibana_space:
        base += f"/s/{settings.kibana_space}"
    headers, auth = _auth_headers(settings)
    try:
        with httpx.Client(timeout=settings.kibana_timeout_s, transport=transport, auth=auth) as client:
            response = client.post(
                f"{base}/api/saved_objects/_import", params={"overwrite": "true" if overwrite else "false"},
                headers=headers,
                files={"file": ("sas-kibana.ndjson", ndjson, "application/ndjson")},
            )
    except httpx.HTTPError as exc:
        raise BackendUnavailable(f"Kibana at {settings.kibana_url} cannot be reached: {exc}") from exc
    if response.status_code != 200:
        raise BackendUnavailable(f"Kibana refused the import (HTTP {response.status_code}): {response.text[:300]}")
    body = response.json()
    errors = [{"type": e.get("type"), "id": e.get("id"), "reason": (e.get("error") or {}).get("type")}
              for e in body.get("errors") or []]
    return ImportResult(success=bool(body.get("success")), success_count=int(body.get("successCount", 0)),
                        errors=errors)


@app.command("import")
def import_command(
    overwrite: Annotated[bool, typer.Option(
        "--overwrite/--no-overwrite", help="replace objects with the same id")] = True,
    file: Annotated[list[Path] | None, typer.Option(
        "--file", help="NDJSON file(s) instead of the packaged assets")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print the NDJSON that would be sent")] = False,
) -> None:
    """Import the data views (on ``<prefix>-<index>`` aliases), visualisations and dashboards into Kibana."""
    from sas_core.errors import SasError

    settings = Settings()
    try:
        ndjson = render_assets(prefix=settings.index_prefix, files=file or None)
        if dry_run:
            typer.echo(ndjson.decode("utf-8"), nl=False)
            return
        result = import_assets(settings=settings, ndjson=ndjson, overwrite=overwrite)
    except SasError as exc:
        console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(1) from exc
    console.print(f"Kibana {settings.kibana_url}: {result.success_count} objects imported"
                  f" for prefix {settings.index_prefix!r}")
    for error in result.errors:
        console.print(f"[red]failed[/red] {error['type']} {error['id']}: {error['reason']}")
    if not result.success:
        raise typer.Exit(1)
