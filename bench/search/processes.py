"""The processes ``sas bench search`` starts and stops: the API as deployed and the vendor simulator behind
its latency layer (``python -m bench.search simulator``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from bench.common import ManagedProcess
from sas_core.settings import Settings


def start_api(*, settings: Settings, port: int, rate_limit: str, log_dir: Path, workers: int = 1) -> ManagedProcess:
    """``sas serve --no-scheduler`` (the production entry point) on ``port``, or uvicorn with several
    workers of the same app, logging the same way, when ``workers > 1``.

    Logging as deployed (``SAS_LOG_LEVEL`` of the environment, INFO by default: one JSON access line
    per request, into ``bench-api.log``): the API measured does what it does for a real caller."""
    env = {**os.environ, "SAS_INDEX_PREFIX": settings.index_prefix, "SAS_ES_URL": settings.es_url,
           "SAS_RATE_LIMIT": rate_limit}
    if workers > 1:
        command = [sys.executable, "-m", "uvicorn", "--factory", "bench.search.processes:logged_api", "--host",
                   "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    else:
        command = [sys.executable, "-m", "sas_cli.main", "serve", "--no-scheduler", "--host", "127.0.0.1",
                   "--port", str(port)]
    process = ManagedProcess(command, env=env, log_path=log_dir / "bench-api.log")
    return process.wait_http(f"http://127.0.0.1:{port}/healthz", timeout_s=60)


def logged_api():
    """The API with logging configured as ``sas serve`` does (uvicorn ``--factory`` of the multi-worker
    bench): uvicorn's own handlers and levels removed, its loggers go to the JSON root handler."""
    import logging

    from sas_core.logging import configure_logging
    from search_api.app import create_app

    settings = Settings()
    configure_logging(level=settings.log_level, json_format=settings.log_json)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.setLevel(logging.NOTSET)
        logger.propagate = True
    return create_app(settings)


def start_simulator(*, settings: Settings, port: int, p50_ms: float, p95_ms: float, seed: int,
                    log_dir: Path) -> ManagedProcess:
    env = {**os.environ, "SAS_INDEX_PREFIX": settings.index_prefix, "SAS_ES_URL": settings.es_url}
    command = [sys.executable, "-m", "bench.search", "simulator", "--port", str(port), "--p50-ms", str(p50_ms),
               "--p95-ms", str(p95_ms), "--seed", str(seed)]
    process = ManagedProcess(command, env=env, log_path=log_dir / "bench-simulator.log")
    return process.wait_http(f"http://127.0.0.1:{port}/_admin/healthz", timeout_s=600)
