"""``sas harvest``: run a vendor harvest by hand, list vendors and recent runs."""

from __future__ import annotations

from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from sas_core.errors import SasError
from sas_core.settings import HarvestSettings, Settings

app = typer.Typer(no_args_is_help=True, help="Vendor (éditeur) slot harvests.")
console = Console()


def _fail(message: str, code: int = 1) -> NoReturn:
    console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code)


@app.command("run")
def run(
    vendor_name: Annotated[str | None, typer.Option(
        "--vendor", "--editor", help="only this vendor (its name in the vendors file, SAS_VENDORS_FILE)")] = None,
    full: Annotated[bool, typer.Option("--full", help="7-day sweep instead of the next 48 h")] = False,
    force: Annotated[bool, typer.Option("--force", help="run even if the vendor's lease is held elsewhere")] = False,
) -> None:
    """Harvest one vendor (or every enabled vendor) now, taking the same per-vendor lease as the scheduler."""
    from indexer.harvest import Harvester, mark_interrupted_runs
    from indexer.leader import LeaseLock
    from sas_core.es import make_client

    settings = Settings()
    es = make_client(settings, request_timeout=120)
    try:
        harvester = Harvester(es=es, settings=settings.slice(HarvestSettings))
        if not harvester.vendors:
            _fail("no vendor configured: set SAS_VENDORS_FILE to a vendors file (see README)")
        targets = [harvester.vendor(vendor_name)] if vendor_name else [v for v in harvester.vendors if v.enabled]
    except SasError as exc:
        _fail(exc.message)
    table = Table("vendor", "mode", "status", "requests", "read", "upserted", "unchanged", "deleted", "stale",
                  "rejected", "seconds")
    failed = False
    for vendor in targets:
        lock = LeaseLock(es, prefix=settings.index_prefix, name=f"harvest-{vendor.name}",
                         ttl_s=settings.harvest_run_lock_ttl_s)
        with lock.holding() as got:
            if not got and not force:
                console.print(f"[yellow]{vendor.name}: a harvest is already running (lease held); skipped[/yellow]")
                continue
            if got:  # holding the vendor's lease: a run still "running" died without recording its end
                mark_interrupted_runs(es, prefix=settings.index_prefix, vendor=vendor.name)
            doc = harvester.run(vendor, mode="full" if full else "incremental")
        failed |= doc["status"] == "failed"
        table.add_row(vendor.name, doc["mode"], doc["status"], str(doc["requests"]), str(doc["read"]),
                      str(doc["upserted"]), str(doc["unchanged"]), str(doc["deleted"]), str(doc["stale_marked"]),
                      str(doc["rejected"]), f"{doc['duration_s']:.1f}")
        for message in doc["errors"][:5]:
            console.print(f"  [red]{vendor.name}[/red]: {message}")
        reasons = ", ".join(f"{r['reason']}={r['count']}" for r in doc["rejected_by_reason"])
        if reasons:
            console.print(f"  {vendor.name} skipped / flagged: {reasons}")
    console.print(table)
    if failed:
        raise typer.Exit(1)


@app.command("vendors")
def vendors() -> None:
    """The vendors of the vendors file (SAS_VENDORS_FILE) and their settings."""
    from connectors.vendors.config import load_vendors

    settings = Settings()
    try:
        items = load_vendors(settings.vendors_file)
    except SasError as exc:
        _fail(exc.message)
    table = Table("name", "base_url", "use cases", "roster", "tls", "timeout", "concurrency",
                  "tiers (window h: every min)")
    for v in items:
        table.add_row(v.name, v.base_url, ",".join(v.use_cases), str(len(v.roster) + len(v.sos_roster)),
                      "yes" if v.tls else "no", f"{v.timeout_s:g}s", str(v.concurrency),
                      ", ".join(f"{t.name} {t.start_h:g}-{t.end_h:g}: {t.every_min:g}" for t in v.schedule_tiers))
    console.print(table)


@app.command("runs")
def runs(
    vendor: Annotated[str | None, typer.Option("--vendor", "--editor", help="only this vendor")] = None,
    size: Annotated[int, typer.Option(help="how many")] = 20,
) -> None:
    """The most recent harvest runs (from the harvest_runs index)."""
    from mappings.registry import alias_name
    from sas_core.es import make_client

    settings = Settings()
    es = make_client(settings)
    filters = [{"term": {"kind": "harvest"}}] + ([{"term": {"vendor": vendor}}] if vendor else [])
    hits = es.search(index=alias_name(settings.index_prefix, "harvest_runs"), size=size,
                     query={"bool": {"filter": filters}}, sort=[{"started_at": "desc"}])["hits"]["hits"]
    table = Table("started", "vendor", "mode", "status", "read", "upserted", "deleted", "stale", "rejected", "s")
    for hit in hits:
        d = hit["_source"]
        table.add_row(d["started_at"][:19], d.get("vendor") or "", d.get("mode") or "", d["status"], str(d["read"]),
                      str(d["upserted"]), str(d["deleted"]), str(d["stale_marked"]), str(d["rejected"]),
                      f"{d.get('duration_s') or 0:.1f}")
    console.print(table)
