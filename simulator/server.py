"""Running the simulator: uvicorn on HTTP, and on HTTPS with client-certificate verification."""

from __future__ import annotations

import asyncio
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn

from simulator.app import Simulator


@dataclass(frozen=True)
class ServerTls:
    """Server certificate and key, and the CA that signs the clients allowed in (mutual TLS)."""

    cert: Path
    key: Path
    client_ca: Path


def _configs(simulator: Simulator, *, host: str, port: int, https_port: int | None, tls: ServerTls | None,
             log_level: str) -> list[uvicorn.Config]:
    configs = [uvicorn.Config(simulator.app, host=host, port=port, log_level=log_level, access_log=False,
                              lifespan="off", timeout_keep_alive=30)]
    if https_port is not None:
        if tls is None:
            raise ValueError("HTTPS needs a server certificate, key and client CA")
        configs.append(uvicorn.Config(
            simulator.app, host=host, port=https_port, log_level=log_level, access_log=False, lifespan="off",
            ssl_certfile=str(tls.cert), ssl_keyfile=str(tls.key), ssl_ca_certs=str(tls.client_ca),
            ssl_cert_reqs=ssl.CERT_REQUIRED, timeout_keep_alive=30))
    return configs


def serve(simulator: Simulator, *, host: str = "127.0.0.1", port: int = 8400, https_port: int | None = None,
          tls: ServerTls | None = None, log_level: str = "warning") -> None:
    """Serve until interrupted (Ctrl-C / SIGTERM)."""
    import gc

    # Agendas are large and long-lived: keep them out of the collector's walks (see indexer.harvest.tune_gc).
    gc.set_threshold(50_000, 20, 100)
    gc.freeze()
    servers = [uvicorn.Server(config) for config in _configs(simulator, host=host, port=port, https_port=https_port,
                                                               tls=tls, log_level=log_level)]

    async def main() -> None:
        await asyncio.gather(*(server.serve() for server in servers))

    asyncio.run(main())


class SimulatorThread:
    """The simulator served from a background thread (tests, benchmarks): ``with SimulatorThread(...)``."""

    def __init__(self, simulator: Simulator, *, host: str = "127.0.0.1", port: int, https_port: int | None = None,
                 tls: ServerTls | None = None) -> None:
        self.simulator = simulator
        self.host, self.port, self.https_port = host, port, https_port
        # Served from a thread: uvicorn installs no signal handlers off the main thread.
        self._servers = [uvicorn.Server(c) for c in _configs(simulator, host=host, port=port, https_port=https_port,
                                                               tls=tls, log_level="warning")]
        self._thread = threading.Thread(target=self._run, name="vendor-simulator", daemon=True)

    def _run(self) -> None:
        async def main() -> None:
            await asyncio.gather(*(server.serve() for server in self._servers))

        asyncio.run(main())

    def start(self, timeout_s: float = 20.0) -> SimulatorThread:
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if all(server.started for server in self._servers):
                try:
                    httpx.get(f"http://{self.host}:{self.port}/_admin/healthz", timeout=2).raise_for_status()
                    return self
                except httpx.HTTPError:
                    pass
            time.sleep(0.05)
        raise RuntimeError("vendor simulator did not start")

    def stop(self) -> None:
        for server in self._servers:
            server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> SimulatorThread:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
