"""The ``sas`` command line."""

from __future__ import annotations

import json
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from sas_cli import addresses as addresses_cli
from sas_cli import bench, harvest, simulate, snapshot
from sas_cli import declarations as declarations_cli
from sas_cli import directory as directory_cli
from sas_cli import fhir as fhir_cli
from sas_cli import kibana as kibana_cli
from sas_cli import proxy as proxy_cli
from sas_cli import reference as reference_cli
from sas_cli import run as run_module
from sas_core.errors import SasError
from sas_core.settings import Settings

#: uvicorn's HTTP parser of the API: httptools (C) rather than h11 (pure Python), whose parsing and
#: event machinery cost about a tenth of the API's CPU per search (``sas bench api-cpu``). Named, not
#: left to uvicorn's "auto", so that a missing install fails at start instead of silently costing that.
#: The mutual-TLS listener keeps h11 (``search_api.tls``: it reads the peer certificate through it).
API_HTTP_PROTOCOL = "httptools"

app = typer.Typer(no_args_is_help=True, help="SAS digital platform: run, load, harvest, search.")
es_app = typer.Typer(no_args_is_help=True, help="The local Elasticsearch node (no Docker).")
app.add_typer(es_app, name="es")
cluster_app = typer.Typer(no_args_is_help=True, help="A local multi-node Elasticsearch cluster (compose's `cluster`).")
es_app.add_typer(cluster_app, name="cluster")
app.add_typer(snapshot.app, name="snapshot")
app.add_typer(run_module.demo_app, name="demo")
app.command("run")(run_module.run)
app.command("proxy")(proxy_cli.proxy)   # HAProxy in front of several `sas serve --port …` replicas
app.add_typer(harvest.app, name="harvest")
app.add_typer(bench.app, name="bench")
app.add_typer(simulate.app, name="simulate")
app.add_typer(fhir_cli.app, name="fhir")
app.add_typer(directory_cli.app, name="directory")
app.add_typer(reference_cli.app, name="reference")
app.add_typer(kibana_cli.app, name="kibana")
app.add_typer(declarations_cli.app, name="declarations")   # refiles declarations stored by earlier versions
app.add_typer(addresses_cli.app, name="addresses")
console = Console()


def _settings() -> Settings:
    return Settings()


def _client(settings: Settings):
    from sas_core.es import make_client

    return make_client(settings)


def _fail(message: str, code: int = 1) -> NoReturn:
    console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code)


@es_app.command("start")
def es_start() -> None:
    """Use SAS_ES_URL if it answers; otherwise fetch (Maven) and start the local node as an unprivileged user."""
    from sas_core import local_es

    settings = _settings()
    try:
        status = local_es.start(settings)
    except SasError as exc:
        _fail(exc.message)
    console.print(f"Elasticsearch {status.version} at {status.url}: {status.cluster_status}"
                  f" (pid {status.managed_pid or 'external'}; logs {status.log_file})")


@es_app.command("stop")
def es_stop() -> None:
    """Stop the local node started by `sas es start`."""
    from sas_core import local_es

    stopped = local_es.stop(_settings())
    console.print("stopped" if stopped else "no local node was running")


@es_app.command("status")
def es_status() -> None:
    """Whether SAS_ES_URL answers, with version and health."""
    from sas_core import local_es

    status = local_es.status(_settings())
    console.print_json(json.dumps({k: str(v) if v is not None else None for k, v in status.__dict__.items()}))
    if not status.reachable:
        raise typer.Exit(1)


_NODES_OPTION = typer.Option("--nodes", min=1, max=9, help="number of nodes (default SAS_ES_CLUSTER_NODES, 3)")


def _cluster(nodes: int | None):
    from sas_core.local_cluster import LocalCluster

    settings = _settings()
    if nodes is not None:
        settings = settings.model_copy(update={"es_cluster_nodes": nodes})
    try:
        return LocalCluster(settings)
    except SasError as exc:
        _fail(exc.message)


def _print_cluster(status) -> None:
    table = Table("node", "url", "pid", "reachable", "master")
    for node in status.nodes:
        table.add_row(node.name, node.url, str(node.pid or "-"), "yes" if node.reachable else "no",
                      "*" if node.master else "")
    console.print(table)
    health = status.health or {}
    console.print(f"cluster {health.get('cluster_name', '?')}: {health.get('status', 'unreachable')}, "
                  f"{health.get('number_of_nodes', 0)} nodes, master {status.master or '-'}")


@cluster_app.command("start")
def es_cluster_start(nodes: Annotated[int | None, _NODES_OPTION] = None) -> None:
    """Start the local cluster's nodes that are not running (loopback, small heaps, unprivileged user)."""
    cluster = _cluster(nodes)
    before = cluster.status()
    if before.running == len(cluster.nodes):
        console.print("already running")
        _print_cluster(before)
        return
    try:
        status = cluster.start()
    except SasError as exc:
        _fail(exc.message)
    _print_cluster(status)


@cluster_app.command("stop")
def es_cluster_stop(nodes: Annotated[int | None, _NODES_OPTION] = None) -> None:
    """Stop the local cluster's nodes (its data stays under SAS_ES_CLUSTER_HOME)."""
    stopped = _cluster(nodes).stop()
    console.print(f"stopped {', '.join(stopped)}" if stopped else "no cluster node was running")


@cluster_app.command("status")
def es_cluster_status(nodes: Annotated[int | None, _NODES_OPTION] = None) -> None:
    """Each node (pid, url, reachable, master) and the cluster health; exit 1 unless every node answers."""
    status = _cluster(nodes).status()
    _print_cluster(status)
    if not all(node.reachable for node in status.nodes):
        raise typer.Exit(1)


def _print_states(states) -> None:
    table = Table("index", "alias", "concrete index", "action", "documents")
    for s in states:
        table.add_row(s.name, s.alias, s.index, s.action, "" if s.documents is None else str(s.documents))
    console.print(table)


@app.command("setup")
def setup(
    national: Annotated[bool, typer.Option(
        "--national", help="national shards / replicas (mappings/settings/national.json)")] = False,
) -> None:
    """Create every missing index and alias (idempotent)."""
    from indexer.lifecycle import setup_indices

    settings = _settings()
    es = _client(settings)
    overrides = None
    if national:
        from indexer.national import national_overrides

        overrides = national_overrides()
    states = setup_indices(es, prefix=settings.index_prefix, overrides=overrides)
    _print_states(states)
    if national:
        from indexer.national import apply_replicas

        for change in apply_replicas(es, prefix=settings.index_prefix):
            note = "" if change.shards == change.shards_wanted else \
                f" [yellow](shards {change.shards}, national {change.shards_wanted}: `sas migrate` to change)[/yellow]"
            console.print(f"{change.index}: replicas {change.replicas_before} → {change.replicas_after}{note}")
    outdated = [s.alias for s in states if s.action == "outdated"]
    if outdated:
        console.print(f"[yellow]outdated (run `sas migrate`):[/yellow] {', '.join(outdated)}")


@app.command("migrate")
def migrate(
    index: Annotated[str | None, typer.Option(help="only this logical index (e.g. offers)")] = None,
    rollback: Annotated[bool, typer.Option(help="point the alias back to the previous version")] = False,
) -> None:
    """Move aliases to the current mapping versions (scan + bulk copy, atomic swap, old index kept)."""
    from indexer.lifecycle import migrate_all, migrate_index, rollback_index
    from mappings.registry import spec

    settings = _settings()
    es = _client(settings)
    if index is not None:
        try:
            spec(index)
        except KeyError:
            _fail(f"unknown index {index!r}")
    try:
        if rollback:
            if index is None:
                _fail("--rollback needs --index")
            states = [rollback_index(es, prefix=settings.index_prefix, name=index)]
        elif index is not None:
            states = [migrate_index(es, prefix=settings.index_prefix, name=index)]
        else:
            states = migrate_all(es, prefix=settings.index_prefix)
    except RuntimeError as exc:
        _fail(str(exc))
    _print_states(states)


@app.command("token")
def token(
    role: Annotated[list[str], typer.Option("--role", help="role(s): osnp, regulator, effecteur, ...")],
    territory: Annotated[list[str] | None, typer.Option("--territory", help="territory code(s), e.g. SAS-92")] = None,
    sub: Annotated[str | None, typer.Option(help="subject (user id)")] = None,
    national_id: Annotated[str | None, typer.Option("--national-id", help="effecteur's national id")] = None,
    name: Annotated[str | None, typer.Option(help="display name")] = None,
    ttl: Annotated[int | None, typer.Option(help="lifetime in seconds")] = None,
) -> None:
    """Print a dev-mode bearer token (SAS_AUTH_MODE=dev only)."""
    from search_api.auth import issue_dev_token

    try:
        value = issue_dev_token(settings=_settings(), roles=role, territories=territory or [], sub=sub,
                                national_id=national_id, name=name, ttl_s=ttl)
    except (ValueError, SasError) as exc:
        _fail(str(exc), code=2)
    typer.echo(value)


@app.command("apikey")
def apikey(
    name: Annotated[str, typer.Option(help="who the key is for")],
    territory: Annotated[list[str], typer.Option("--territory", help="territory code(s), e.g. SAS-47")],
    slot_type: Annotated[list[str] | None, typer.Option("--slot-type", help="slot types granted beyond PUBLIC")] = None,
) -> None:
    """Create an integrator API key and print it (shown once; only its hash is stored)."""
    from search_api.api_keys import ApiKeyStore
    from search_api.executor import Executor

    settings = _settings()
    store = ApiKeyStore(executor=Executor(es=_client(settings), prefix=settings.index_prefix), cache_s=0)
    try:
        raw, doc = store.create(name=name, territories=territory, slot_types=slot_type or [], created_by="cli")
    except (ValueError, SasError) as exc:
        _fail(str(exc), code=2)
    console.print(f"key id {doc.id} for {doc.name} ({', '.join(doc.territories)}); send it as X-API-Key:")
    typer.echo(raw)


@app.command("serve")
def serve(
    host: Annotated[str | None, typer.Option(help="listen address")] = None,
    port: Annotated[int | None, typer.Option(help="listen port")] = None,
    no_scheduler: Annotated[bool, typer.Option("--no-scheduler", help="API only")] = False,
) -> None:
    """Run the API (and the scheduler unless told not to) in the foreground."""
    import uvicorn

    from indexer.scheduler import build_scheduler
    from sas_core.logging import configure_logging
    from search_api.app import create_app

    settings = _settings()
    configure_logging(level=settings.log_level, json_format=settings.log_json)
    try:
        api = create_app(settings)
    except SasError as exc:   # e.g. OIDC mode without SAS_PUBLIC_BASE_URL: say so, no traceback
        console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(2) from None
    scheduler = None
    if not no_scheduler:
        scheduler = build_scheduler(settings=settings, es=_client(settings))
        scheduler.start()
    try:
        uvicorn.run(api, host=host or settings.api_host, port=port or settings.api_port,
                    log_config=None, access_log=True, http=API_HTTP_PROTOCOL)
    finally:
        if scheduler is not None:
            scheduler.shutdown(wait=True)


@app.command("scheduler")
def scheduler_command() -> None:
    """Run the scheduler alone in the foreground (harvests, directory refresh) until interrupted."""
    import signal
    import threading

    from indexer.scheduler import build_scheduler
    from sas_core.logging import configure_logging

    settings = _settings()
    configure_logging(level=settings.log_level, json_format=settings.log_json)
    if settings.scheduler_metrics_port:
        from sas_core.metrics import serve_metrics

        serve_metrics(host=settings.scheduler_metrics_host, port=settings.scheduler_metrics_port)
    scheduler = build_scheduler(settings=settings, es=_client(settings))
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    scheduler.start()
    console.print(f"scheduler running with {len(scheduler.get_jobs())} job(s); Ctrl-C to stop")
    stop.wait()
    scheduler.shutdown(wait=True)


if __name__ == "__main__":  # pragma: no cover
    app()
