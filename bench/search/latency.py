"""The latency of vendors reached over the internet, injected in front of the real simulator application."""

from __future__ import annotations

import asyncio
import math
import random

from sas_core.settings import Settings


class LogNormalLatency:
    """ASGI layer delaying every vendor (FHIR) request by a log-normal draw: median ``p50_ms``, 95th
    percentile ``p95_ms`` — the latency of vendors reached over the internet, as documented."""

    Z95 = 1.6448536269514722

    def __init__(self, app, *, p50_ms: float, p95_ms: float, seed: int) -> None:
        self.app = app
        self.mu = math.log(p50_ms / 1000.0)
        self.sigma = math.log(p95_ms / p50_ms) / self.Z95 if p95_ms > p50_ms else 0.0
        self.rng = random.Random(seed)

    def delay_s(self) -> float:
        return math.exp(self.rng.gauss(self.mu, self.sigma)) if self.sigma else math.exp(self.mu)

    async def __call__(self, scope, receive, send):
        if scope.get("type") == "http" and "/fhir/" in scope.get("path", ""):
            await asyncio.sleep(self.delay_s())
        await self.app(scope, receive, send)


def serve_simulator(*, port: int, p50_ms: float, p95_ms: float, seed: int) -> None:
    """The real vendor simulator (rosters from the offers index) behind the latency layer."""
    import uvicorn

    from sas_core.es import make_client
    from simulator.app import Simulator
    from simulator.roster import load_rosters

    settings = Settings()
    rosters = load_rosters(make_client(settings, request_timeout=300), prefix=settings.index_prefix)
    simulator = Simulator(rosters, public_url=f"http://127.0.0.1:{port}")
    app = LogNormalLatency(simulator.app, p50_ms=p50_ms, p95_ms=p95_ms, seed=seed)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="off",
                timeout_keep_alive=30, backlog=4096)
