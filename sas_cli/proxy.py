"""``sas proxy``: HAProxy in front of several API replicas (``sas serve --port …``), health-checked.

The configuration is built here (``haproxy_config``, pure) and HAProxy runs in the foreground with it.
A replica is taken out after ``fall`` failed checks of ``/readyz`` (every ``check_ms``) and put back
after ``rise`` good ones; a request whose connection to a replica fails (killed between two checks) is
sent again to another one (``retry-on conn-failure empty-response`` + ``option redispatch``), so a
caller sees no error when a replica dies. Only failures before any answer are retried: a request the
replica may have started to process (a booking) is never sent twice.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Annotated

import typer

HAPROXY = "/usr/sbin/haproxy"


def haproxy_config(*, listen_host: str, listen_port: int, backends: list[str], check_ms: int = 500,
                   fall: int = 2, rise: int = 2, timeout_s: float = 30.0, check_timeout_ms: int = 3000) -> str:
    """An HAProxy configuration: one frontend, round robin over ``backends`` (``host:port``)."""
    if not backends:
        raise ValueError("at least one backend (host:port)")
    servers = "\n".join(f"    server api{i} {backend} check inter {check_ms}ms fall {fall} rise {rise}"
                        for i, backend in enumerate(backends, start=1))
    timeout_ms = int(timeout_s * 1000)
    return f"""global
    maxconn 4096

defaults
    mode http
    timeout connect 1s
    # How long one /readyz check may take, apart from how often it runs: without it HAProxy waits only
    # ``inter`` (200 ms in the tests), and a loaded machine took every replica out at once (seen in CI:
    # "Layer7 timeout" on both, "no server available"). A killed replica still goes at once (refused).
    timeout check {check_timeout_ms}ms
    timeout client {timeout_ms}ms
    timeout server {timeout_ms}ms
    # A connection refused or closed before any answer (a replica killed between two health checks) is
    # sent again, to another replica: nothing was processed, so the retry is safe.
    retries 2
    retry-on conn-failure empty-response
    option redispatch 1
    option http-server-close
    option forwardfor

frontend sas
    bind {listen_host}:{listen_port}
    default_backend api

backend api
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
{servers}
"""


def proxy(
    backend: Annotated[list[str], typer.Option("--backend", "-b", help="an API replica, host:port (repeat)")],
    host: Annotated[str, typer.Option(help="listen address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="listen port")] = 8000,
    check_ms: Annotated[int, typer.Option(help="health check of /readyz every … ms")] = 500,
) -> None:
    """Run HAProxy in the foreground in front of the API replicas (round robin, /readyz checks)."""
    binary = shutil.which("haproxy") or HAPROXY
    if not Path(binary).is_file():
        typer.echo("sas proxy: haproxy is not installed (make proxy, or apt-get install haproxy)", err=True)
        raise typer.Exit(code=1)
    folder = Path(tempfile.mkdtemp(prefix="sas-proxy-"))
    config = folder / "haproxy.cfg"
    config.write_text(haproxy_config(listen_host=host, listen_port=port, backends=backend, check_ms=check_ms),
                      encoding="utf-8")
    typer.echo(f"proxy on http://{host}:{port} → {', '.join(backend)} (config {config})")
    # HAProxy in the foreground (-db) in this process: stopping ``sas proxy`` stops it.
    os.execv(binary, [binary, "-db", "-f", str(config)])
