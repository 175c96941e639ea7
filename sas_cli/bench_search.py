"""Machinery of ``sas bench search``: the query mix, three measured paths, percentiles, the JSON result.

The same fixed query mix is sent three ways, each by ``clients`` concurrent clients:

* **api** — ``GET /v1/search`` over HTTP against the running API (``sas serve``), with OSNP tokens;
* **raw_es** — the very Elasticsearch requests the API makes for each query (captured by running the
  API's own search service once per query through a recording client), replayed over HTTP straight to
  Elasticsearch, in the same order: the difference with ``api`` is the API's own cost;
* **fanout** — the strategy of the current national platform, live at search time: find the
  participating practitioners near the point in the directory, then ask each of their vendors (the
  simulator) for free slots, 25 practitioners per request, all requests at once, 7 s vendor timeout.

The simulator answers at a documented latency distribution for vendors reached over the internet
(log-normal, median 250 ms, p95 1.5 s by default, hence p99 ≈ 3.2 s), injected by a small ASGI layer in
front of the real simulator application (``python -m sas_cli.bench_search simulator``).

This is a benchmark, never a unit test: it needs a loaded national dataset (see ``prepare_dataset``).
"""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import json
import math
import os
import platform
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from sas_core.settings import Settings

GP_CODES = ("SM54", "SM26", "SM53")
#: Used only when the offers index cannot tell which specialties exist.
FALLBACK_OTHER_SPECIALTIES = {"SM40": 10, "SM15": 6, "SM38": 6, "SM04": 6, "SM42": 5, "SM19": 4, "SM32": 3, "SM34": 3}


# --- Statistics ------------------------------------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0–100) with linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    if len(ordered) == 1:
        return float(ordered[0])
    rank = (p / 100.0) * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (rank - low))


def summarize(latencies_s: Sequence[float], *, wall_s: float, errors: int, extra: dict | None = None) -> dict:
    """p50 / p95 / p99 / mean / max in milliseconds and throughput of one measured run."""
    ms = [v * 1000.0 for v in latencies_s]
    out = {
        "n": len(ms),
        "errors": errors,
        "p50_ms": round(percentile(ms, 50), 2),
        "p95_ms": round(percentile(ms, 95), 2),
        "p99_ms": round(percentile(ms, 99), 2),
        "mean_ms": round(sum(ms) / len(ms), 2) if ms else None,
        "max_ms": round(max(ms), 2) if ms else None,
        "qps": round(len(ms) / wall_s, 2) if wall_s > 0 else None,
        "wall_s": round(wall_s, 2),
    }
    if extra:
        out.update(extra)
    return out


# --- The query mix -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchQuery:
    """One search of the mix: the API query parameters and what they mean."""

    params: tuple[tuple[str, str], ...]
    insee: str
    specialty: str

    def path(self) -> str:
        return "/v1/search?" + urlencode(self.params)

    def as_dict(self) -> dict[str, str]:
        return dict(self.params)


def build_query_mix(*, communes: Sequence, other_specialties: dict[str, int], n: int, seed: int,
                    gp_share: float = 0.7) -> list[BenchQuery]:
    """``n`` searches: the commune drawn with probability proportional to its population (communes
    without population, i.e. municipal districts, are covered by their city), ``gp_share`` of them for
    general practice and the rest for other specialties in proportion to how many places practise them;
    the place given as ``q`` (postcode and name, as an operator types it) or as ``insee``; default window
    (now → 48 h), default sort and page."""
    rng = random.Random(seed)
    populated = [c for c in communes if c.population]
    weights = [c.population for c in populated]
    others = sorted(other_specialties.items())
    other_codes = [code for code, _ in others]
    other_weights = [count for _, count in others]
    mix: list[BenchQuery] = []
    for commune in rng.choices(populated, weights=weights, k=n):
        specialty = "SM54" if rng.random() < gp_share or not other_codes else rng.choices(other_codes, other_weights)[0]
        if rng.random() < 0.6 and commune.postcodes:
            where = ("q", f"{commune.postcodes[0]} {commune.name}")
        else:
            where = ("insee", commune.insee)
        mix.append(BenchQuery(params=(where, ("specialty", specialty)), insee=commune.insee, specialty=specialty))
    return mix


def mix_fingerprint(mix: Sequence[BenchQuery]) -> str:
    digest = hashlib.sha256()
    for query in mix:
        digest.update(query.path().encode())
    return digest.hexdigest()[:16]


def other_specialty_weights(es, *, prefix: str) -> dict[str, int]:
    """How many participating places practise each non-general-practice specialty (the 30 % of the mix)."""
    from mappings.registry import alias_name

    body = {"size": 0, "query": {"term": {"sas.participates": True}},
            "aggs": {"s": {"terms": {"field": "specialties", "size": 200}}}}
    buckets = es.search(index=alias_name(prefix, "offers"), body=body)["aggregations"]["s"]["buckets"]
    weights = {b["key"]: b["doc_count"] for b in buckets if b["key"] not in GP_CODES and b["key"].startswith("SM")}
    return weights or dict(FALLBACK_OTHER_SPECIALTIES)


# --- Capturing the Elasticsearch requests the API makes --------------------------------------------------------------


@dataclass
class RecordedRequest:
    method: str
    path: str                 # with the query string
    body: bytes | None
    content_type: str | None


class _Recorder:
    """Where the recording client puts requests (shared with the copies ``options()`` makes)."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []


def _recording_client(url: str, recorder: _Recorder):
    """A real Elasticsearch client that also keeps every request it sends (method, path, body)."""
    from elasticsearch import Elasticsearch

    class RecordingElasticsearch(Elasticsearch):
        def perform_request(self, method, path, *, params=None, headers=None, body=None, **kwargs):
            query = ("?" + urlencode(params)) if params else ""
            content_type = None
            payload: bytes | None = None
            if body is not None:
                if isinstance(body, (bytes, str)):
                    # Already encoded by the API (multi-search lines): replayed byte for byte.
                    payload = body.encode() if isinstance(body, str) else body
                    content_type = "application/x-ndjson" if path.endswith("/_msearch") else "application/json"
                elif isinstance(body, (list, tuple)):
                    payload = b"".join(json.dumps(line, separators=(",", ":")).encode() + b"\n" for line in body)
                    content_type = "application/x-ndjson"
                else:
                    payload = json.dumps(body, separators=(",", ":")).encode()
                    content_type = "application/json"
            recorder.requests.append(RecordedRequest(method, path + query, payload, content_type))
            return super().perform_request(method, path, params=params, headers=headers, body=body, **kwargs)

    return RecordingElasticsearch(url, request_timeout=30)


@dataclass
class Capture:
    """For each query of the mix: the Elasticsearch requests of the API, and what it answered."""

    requests: list[list[RecordedRequest]] = field(default_factory=list)
    radius_km: list[float | None] = field(default_factory=list)
    totals: list[int | None] = field(default_factory=list)
    failures: Counter = field(default_factory=Counter)


def capture_api_requests(*, settings: Settings, mix: Sequence[BenchQuery], passes: int = 2) -> Capture:
    """Run the API's own parameter resolution and search service for every query, recording the
    Elasticsearch requests (the bodies the API builds) and the radius it applied.

    The mix is run ``passes`` times and the last pass is kept: a running API remembers the radius each
    place needed (radius hints), so its steady-state requests are those of a second pass."""
    from sas_core.errors import SasError
    from search_api.auth import Principal, Role
    from search_api.executor import Executor
    from search_api.routes.search import SearchContext, build_slot_query
    from search_api.search_service import SearchService

    recorder = _Recorder()
    client = _recording_client(settings.es_url, recorder)
    from connectors.directory.nomenclatures import load_specialties
    from search_api.geocode import PlaceResolver
    from search_api.specialties import SpecialtyResolver

    context = SearchContext(places=PlaceResolver.from_settings(settings),
                            specialties=SpecialtyResolver(load_specialties(settings.reference_data_dir).labels),
                            service=SearchService(executor=Executor(es=client, prefix=settings.index_prefix),
                                                  report_max_hours=settings.report_max_hours),
                            settings=settings)
    principal = Principal(sub="bench-capture", roles=frozenset({Role.OSNP}))
    capture = Capture()
    for _ in range(passes - 1):
        for query in mix:
            params = query.as_dict()
            try:
                context.service.search(build_slot_query(
                    context, principal, now=datetime.now(timezone.utc), lat=None, lon=None, q=params.get("q"),
                    insee=params.get("insee"), radius_km=None, specialty=[params["specialty"]], start=None,
                    end=None, within=None, modes=None, kinds=None, sector=None, bookable_only=False,
                    sort="balanced", page=1, size=20, slots=3, explain=False))
            except SasError:
                pass
    for query in mix:
        params = query.as_dict()
        recorder.requests = []
        try:
            slot_query = build_slot_query(
                context, principal, now=datetime.now(timezone.utc), lat=None, lon=None, q=params.get("q"),
                insee=params.get("insee"), radius_km=None, specialty=[params["specialty"]], start=None, end=None,
                within=None, modes=None, kinds=None, sector=None, bookable_only=False, sort="balanced", page=1,
                size=20, slots=3, explain=False)
            answer = context.service.search(slot_query)
            capture.radius_km.append(answer["radius_km"])
            capture.totals.append(answer["total"])
        except SasError as exc:
            capture.failures[type(exc).__name__] += 1
            capture.radius_km.append(None)
            capture.totals.append(None)
        capture.requests.append(list(recorder.requests))
    client.close()
    return capture


# --- Closed-loop HTTP load (threads, one keep-alive connection each) ---------------------------------------------------


@dataclass
class LoadResult:
    latencies_s: list[float]
    errors: Counter
    wall_s: float


def run_load(*, clients: int, jobs: int, host: str, port: int, send: Callable[[http.client.HTTPConnection, int], bool],
             think_ms: float = 0.0, seed: int = 1) -> LoadResult:
    """``clients`` threads share ``jobs`` job numbers; each sends the next one as soon as its previous
    answer is read (plus an optional exponential think time), over its own keep-alive connection."""
    lock = threading.Lock()
    counter = iter(range(jobs))
    latencies: list[float] = []
    errors: Counter = Counter()

    def worker(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        conn = http.client.HTTPConnection(host, port, timeout=60)
        while True:
            with lock:
                job = next(counter, None)
            if job is None:
                break
            started = time.perf_counter()
            try:
                ok = send(conn, job)
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=60)
                with lock:
                    errors[type(exc).__name__] += 1
                continue
            elapsed = time.perf_counter() - started
            with lock:
                if ok:
                    latencies.append(elapsed)
                else:
                    errors["http_status"] += 1
            if think_ms > 0:
                time.sleep(rng.expovariate(1000.0 / think_ms))
        conn.close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return LoadResult(latencies, errors, time.perf_counter() - started)


def api_sender(mix: Sequence[BenchQuery], tokens: Sequence[str], *, status_log: Counter | None = None):
    """Send query ``job % len(mix)`` to the API with client token ``job % len(tokens)``."""
    paths = [q.path() for q in mix]

    def send(conn: http.client.HTTPConnection, job: int) -> bool:
        conn.request("GET", paths[job % len(paths)],
                     headers={"Authorization": f"Bearer {tokens[job % len(tokens)]}", "Accept": "application/json"})
        response = conn.getresponse()
        response.read()
        if status_log is not None and response.status != 200:
            status_log[response.status] += 1
        return response.status == 200

    return send


def raw_sender(capture: Capture):
    """Replay, in order, the Elasticsearch requests the API made for query ``job``."""
    usable = [reqs for reqs in capture.requests if reqs]

    def send(conn: http.client.HTTPConnection, job: int) -> bool:
        ok = True
        for req in usable[job % len(usable)]:
            headers = {"Content-Type": req.content_type} if req.content_type else {}
            conn.request(req.method, req.path, body=req.body, headers=headers)
            response = conn.getresponse()
            response.read()
            ok = ok and response.status == 200
        return ok

    return send


# --- Live fan-out baseline (the national platform's strategy) ---------------------------------------------------------


@dataclass
class FanoutStats:
    latencies_s: list[float] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)
    vendor_requests: list[int] = field(default_factory=list)
    vendor_timeouts: int = 0
    vendor_failures: int = 0
    practitioners: list[int] = field(default_factory=list)
    slots: list[int] = field(default_factory=list)
    wall_s: float = 0.0


def fanout_directory_body(*, lat: float, lon: float, radius_km: float, specialties: Sequence[str]) -> dict:
    """Participating places with a connected vendor near the point (what the fan-out must ask about)."""
    return {
        "size": 10000,
        "_source": ["id", "kind", "national_id", "sas.vendor", "sos.association_siret"],
        "query": {"bool": {"filter": [
            {"term": {"sas.participates": True}},
            {"exists": {"field": "sas.vendor"}},
            {"geo_distance": {"distance": f"{radius_km}km", "location": {"lat": lat, "lon": lon}}},
            {"bool": {"should": [{"terms": {"specialties": list(specialties)}}, {"term": {"kind": "sos"}}],
                      "minimum_should_match": 1}},
        ]}},
    }


async def _vendor_slots(client, url: str, params: list[tuple[str, str]], *, timeout_s: float) -> int:
    """Free slots a vendor returns for one request (pages followed), within the vendor timeout."""
    import httpx

    count = 0
    deadline = time.monotonic() + timeout_s
    next_url: str | None = url
    next_params: list[tuple[str, str]] | None = params
    while next_url:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise httpx.TimeoutException("vendor deadline")
        response = await client.get(next_url, params=next_params, timeout=remaining,
                                    headers={"Accept": "application/fhir+json"})
        response.raise_for_status()
        bundle = response.json()
        count += sum(1 for e in bundle.get("entry") or [] if (e.get("resource") or {}).get("resourceType") == "Slot")
        next_url = next((link.get("url") for link in bundle.get("link") or [] if link.get("relation") == "next"), None)
        next_params = None
    return count


async def _fanout_run(*, es_url: str, offers_alias: str, simulator_url: str, jobs: list[tuple[BenchQuery, float, float, float]],
                      clients: int, vendor_timeout_s: float, window_h: float, specialties_of: Callable[[str], Sequence[str]],
                      stats: FanoutStats) -> None:
    import httpx

    from connectors.vendors.queries import (
        MAX_IDS_PER_REQUEST, SOS_IDS_PER_REQUEST, batches, practitioner_slot_search, sos_schedule_search,
    )

    queue: asyncio.Queue = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)
    limits = httpx.Limits(max_connections=2000, max_keepalive_connections=500)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def one(query: BenchQuery, lat: float, lon: float, radius_km: float) -> None:
            started = time.perf_counter()
            body = fanout_directory_body(lat=lat, lon=lon, radius_km=radius_km, specialties=specialties_of(query.specialty))
            response = await client.post(f"{es_url}/{offers_alias}/_search", json=body)
            response.raise_for_status()
            by_vendor: dict[tuple[str, str], list[str]] = {}
            practitioners = 0
            for hit in response.json()["hits"]["hits"]:
                source = hit["_source"]
                vendor = (source.get("sas") or {}).get("vendor")
                if source.get("kind") == "sos":
                    key = (source.get("sos") or {}).get("association_siret")
                    if key:
                        by_vendor.setdefault((vendor, "sos"), []).append(key)
                elif source.get("national_id"):
                    by_vendor.setdefault((vendor, "ps"), []).append(source["national_id"])
                    practitioners += 1
            now = datetime.now(timezone.utc)
            end = now + timedelta(hours=window_h)
            calls = []
            for (vendor, kind), ids in by_vendor.items():
                base = f"{simulator_url}/{vendor}/fhir"
                # SOS searches name 10 SIRETs at most (functional spec; the simulator refuses more).
                for batch in batches(ids, SOS_IDS_PER_REQUEST if kind == "sos" else MAX_IDS_PER_REQUEST):
                    if kind == "sos":
                        calls.append(_vendor_slots(client, f"{base}/Schedule", sos_schedule_search(
                            association_ids=batch, start=now, end=end), timeout_s=vendor_timeout_s))
                    else:
                        calls.append(_vendor_slots(client, f"{base}/Slot", practitioner_slot_search(
                            national_ids=batch, start=now, end=end, with_cpts=True), timeout_s=vendor_timeout_s))
            # The vendor timeout bounds each request as a whole (connection, every page, the answer).
            answers = await asyncio.gather(*(asyncio.wait_for(call, vendor_timeout_s) for call in calls),
                                           return_exceptions=True)
            # The national platform shows what arrived by the deadline: a late or failed vendor is
            # simply missing from the answer, the query itself succeeds.
            slots = 0
            for answer in answers:
                if isinstance(answer, int):
                    slots += answer
                elif isinstance(answer, (httpx.TimeoutException, asyncio.TimeoutError)):
                    stats.vendor_timeouts += 1
                else:
                    stats.vendor_failures += 1
            stats.latencies_s.append(time.perf_counter() - started)
            stats.vendor_requests.append(len(calls))
            stats.practitioners.append(practitioners)
            stats.slots.append(slots)

        async def worker() -> None:
            while True:
                try:
                    job = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                try:
                    await one(*job)
                except Exception as exc:  # noqa: BLE001 - counted, the run goes on
                    stats.errors[type(exc).__name__] += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        stats.wall_s = time.perf_counter() - started


def run_fanout(*, settings: Settings, simulator_url: str, jobs: list[tuple[BenchQuery, float, float, float]],
               clients: int, vendor_timeout_s: float = 7.0, window_h: float = 48.0) -> FanoutStats:
    from mappings.registry import alias_name

    stats = FanoutStats()

    def specialties_of(code: str) -> Sequence[str]:
        return GP_CODES if code in GP_CODES else (code,)

    asyncio.run(_fanout_run(es_url=settings.es_url.rstrip("/"), offers_alias=alias_name(settings.index_prefix, "offers"),
                            simulator_url=simulator_url.rstrip("/"), jobs=jobs, clients=clients,
                            vendor_timeout_s=vendor_timeout_s, window_h=window_h, specialties_of=specialties_of,
                            stats=stats))
    return stats


# --- Processes: the API and the simulator ------------------------------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_http(url: str, *, timeout_s: float, process: subprocess.Popen | None = None) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process for {url} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout_s:.0f}s")


class ManagedProcess:
    """A child process started by the bench and stopped by it (by its own pid, never by name)."""

    def __init__(self, command: list[str], *, env: dict[str, str], log_path: Path) -> None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log = open(log_path, "ab")
        self.process = subprocess.Popen(command, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                        start_new_session=True)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.log.close()


def start_api(*, settings: Settings, port: int, rate_limit: str, log_dir: Path, workers: int = 1) -> ManagedProcess:
    """``sas serve --no-scheduler`` (the production entry point) on ``port``, or uvicorn with several
    workers of the same app, logging the same way, when ``workers > 1``.

    Logging as deployed (``SAS_LOG_LEVEL`` of the environment, INFO by default: one JSON access line
    per request, into ``bench-api.log``): the API measured does what it does for a real caller."""
    env = {**os.environ, "SAS_INDEX_PREFIX": settings.index_prefix, "SAS_ES_URL": settings.es_url,
           "SAS_RATE_LIMIT": rate_limit}
    if workers > 1:
        command = [sys.executable, "-m", "uvicorn", "--factory", "sas_cli.bench_search:logged_api", "--host",
                   "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    else:
        command = [sys.executable, "-m", "sas_cli.main", "serve", "--no-scheduler", "--host", "127.0.0.1",
                   "--port", str(port)]
    process = ManagedProcess(command, env=env, log_path=log_dir / "bench-api.log")
    _wait_http(f"http://127.0.0.1:{port}/healthz", timeout_s=60, process=process.process)
    return process


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
    command = [sys.executable, "-m", "sas_cli.bench_search", "simulator", "--port", str(port), "--p50-ms", str(p50_ms),
               "--p95-ms", str(p95_ms), "--seed", str(seed)]
    process = ManagedProcess(command, env=env, log_path=log_dir / "bench-simulator.log")
    _wait_http(f"http://127.0.0.1:{port}/_admin/healthz", timeout_s=600, process=process.process)
    return process


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


# --- The whole benchmark ---------------------------------------------------------------------------------------------


@dataclass
class BenchConfig:
    queries: int = 3000
    warmup: int = 300
    clients: int = 16
    #: Mean exponential think time of each client between two searches (an operator reads the answer).
    think_ms: float = 500.0
    #: Also measure api and raw_es without think time (the machine's capacity).
    saturation: bool = True
    fanout_queries: int = 320
    seed: int = 20240522
    gp_share: float = 0.7
    vendor_p50_ms: float = 250.0
    vendor_p95_ms: float = 1500.0
    vendor_timeout_s: float = 7.0
    api_url: str | None = None
    simulator_url: str | None = None
    api_workers: int = 1
    skip_fanout: bool = False
    rate_limit: str = "1000/second"


def dataset_counts(es, *, prefix: str) -> dict[str, Any]:
    from mappings.registry import alias_name

    offers = alias_name(prefix, "offers")
    slots = alias_name(prefix, "slots")
    now = datetime.now(timezone.utc)
    return {
        "offers": es.count(index=offers)["count"],
        "participating_offers": es.count(index=offers, body={"query": {"term": {"sas.participates": True}}})["count"],
        "offers_with_vendor": es.count(index=offers, body={"query": {"exists": {"field": "sas.vendor"}}})["count"],
        "slots": es.count(index=slots)["count"],
        "slots_next_7_days": es.count(index=slots, body={"query": {"range": {"start": {
            "gte": now.isoformat(), "lt": (now + timedelta(days=7)).isoformat()}}}})["count"],
        "slots_next_48_h": es.count(index=slots, body={"query": {"range": {"start": {
            "gte": now.isoformat(), "lt": (now + timedelta(hours=48)).isoformat()}}}})["count"],
        "vendors": len(es.search(index=offers, body={"size": 0, "aggs": {"v": {"terms": {"field": "sas.vendor",
                                                                                          "size": 100}}}})
                       ["aggregations"]["v"]["buckets"]),
    }


def run_search_bench(*, settings: Settings, config: BenchConfig, log: Callable[[str], None] = print,
                     log_dir: Path | None = None) -> dict[str, Any]:
    """Measure api, raw_es and fanout on the dataset of ``settings.index_prefix``; the result document."""
    from connectors.reference import load_communes
    from sas_core.es import make_client
    from search_api.auth import issue_dev_token

    log_dir = log_dir or (settings.cache_dir / "bench")
    es = make_client(settings, request_timeout=120)
    dataset = dataset_counts(es, prefix=settings.index_prefix)
    log(f"dataset {settings.index_prefix}: {dataset}")
    if not dataset["slots"]:
        raise RuntimeError(f"no slot under prefix {settings.index_prefix!r}: load a dataset first (sas bench search "
                           "--prepare …)")
    communes = load_communes(settings.reference_data_dir)
    weights = other_specialty_weights(es, prefix=settings.index_prefix)
    total = config.warmup + config.queries
    mix = build_query_mix(communes=communes, other_specialties=weights, n=total, seed=config.seed,
                          gp_share=config.gp_share)
    log(f"query mix: {total} queries (seed {config.seed}), {sum(q.specialty == 'SM54' for q in mix)} general practice")

    log("capturing the Elasticsearch requests of every query through the API's own search service…")
    started = time.perf_counter()
    capture = capture_api_requests(settings=settings, mix=mix)
    per_query = Counter(len(r) for r in capture.requests)
    log(f"  captured in {time.perf_counter() - started:.1f}s; requests per query {dict(sorted(per_query.items()))};"
        f" failures {dict(capture.failures)}")
    radii = Counter(r for r in capture.radius_km if r is not None)

    processes: list[ManagedProcess] = []
    result: dict[str, Any] = {
        "benchmark": "search",
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    # Other work on the machine skews every figure: the 1/5/15-minute load before measuring.
                    "loadavg_before": [round(v, 2) for v in os.getloadavg()]},
        "dataset": {**dataset, "prefix": settings.index_prefix},
        "mix": {"queries": config.queries, "warmup": config.warmup, "seed": config.seed, "gp_share": config.gp_share,
                "fingerprint": mix_fingerprint(mix), "distinct_communes": len({q.insee for q in mix}),
                "radius_applied_km": {str(k): v for k, v in sorted(radii.items())},
                "es_requests_per_query": {str(k): v for k, v in sorted(per_query.items())}},
        "load": {"clients": config.clients, "model": "closed loop" if not config.think_ms else
                 f"closed loop, each client thinking an exponential time (mean {config.think_ms:g} ms) "
                 "between its searches", "think_ms": config.think_ms, "api_workers": config.api_workers},
    }
    try:
        # --- API -------------------------------------------------------------------------------------------
        if config.api_url:
            parts = urlsplit(config.api_url)
            api_host, api_port = parts.hostname or "127.0.0.1", parts.port or 80
        else:
            api_host, api_port = "127.0.0.1", _free_port()
            log(f"starting the API on port {api_port} ({config.api_workers} worker(s))…")
            processes.append(start_api(settings=settings, port=api_port, rate_limit=config.rate_limit,
                                       log_dir=log_dir, workers=config.api_workers))
        tokens = [issue_dev_token(settings=settings, roles=["osnp"], territories=[], sub=f"bench-operator-{i}",
                                  ttl_s=6 * 3600) for i in range(config.clients)]
        es_parts = urlsplit(settings.es_url)
        es_host, es_port = es_parts.hostname or "127.0.0.1", es_parts.port or 9200
        measured = [mix[config.warmup + i] for i in range(config.queries)]
        raw_capture = Capture(requests=capture.requests[config.warmup:])
        log(f"warm-up: {config.warmup} queries through the API, then the measured queries once through the API "
            "(not measured), so that every measured pass follows a pass of the other path over the same queries…")
        run_load(clients=config.clients, jobs=config.warmup, host=api_host, port=api_port,
                 send=api_sender(mix, tokens))
        run_load(clients=config.clients, jobs=config.queries, host=api_host, port=api_port,
                 send=api_sender(measured, tokens))

        def measure_api(think_ms: float) -> dict:
            statuses: Counter = Counter()
            log(f"api: {config.queries} queries, {config.clients} clients, think time {think_ms:g} ms…")
            api = run_load(clients=config.clients, jobs=config.queries, host=api_host, port=api_port,
                           send=api_sender(measured, tokens, status_log=statuses), think_ms=think_ms, seed=config.seed)
            out = summarize(api.latencies_s, wall_s=api.wall_s, errors=sum(api.errors.values()),
                            extra={"error_kinds": dict(api.errors), "non_200": {str(k): v for k, v in statuses.items()}})
            log(f"  api: {out}")
            return out

        def measure_raw(think_ms: float) -> dict:
            log(f"raw_es: the same {config.queries} queries' requests replayed to {settings.es_url}, "
                f"think time {think_ms:g} ms…")
            raw = run_load(clients=config.clients, jobs=config.queries, host=es_host, port=es_port,
                           send=raw_sender(raw_capture), think_ms=think_ms, seed=config.seed)
            out = summarize(raw.latencies_s, wall_s=raw.wall_s, errors=sum(raw.errors.values()),
                            extra={"error_kinds": dict(raw.errors)})
            log(f"  raw_es: {out}")
            return out

        # Order: API pass (warm-up above) → raw → API → [raw → API without think time]: each measured pass
        # follows a pass of the other path over the same queries (same state of Elasticsearch's caches).
        result["raw_es"] = measure_raw(config.think_ms)
        result["api"] = measure_api(config.think_ms)
        if config.saturation and config.think_ms > 0:
            raw_sat = measure_raw(0.0)
            result["saturation"] = {"model": "closed loop without think time: capacity of the machine",
                                    "raw_es": raw_sat, "api": measure_api(0.0)}

        # --- Live fan-out -----------------------------------------------------------------------------------------
        simulator_info = {"latency": {"distribution": "log-normal", "p50_ms": config.vendor_p50_ms,
                                      "p95_ms": config.vendor_p95_ms,
                                      "p99_ms": round(config.vendor_p50_ms * math.exp(
                                          2.3263478740408408 * math.log(config.vendor_p95_ms / config.vendor_p50_ms)
                                          / LogNormalLatency.Z95), 1)},
                          "vendor_timeout_s": config.vendor_timeout_s, "ids_per_request": 25}
        result["simulator"] = simulator_info
        if not config.skip_fanout:
            if config.simulator_url:
                simulator_url = config.simulator_url
            else:
                port = _free_port()
                log(f"starting the vendor simulator on port {port} (log-normal latency p50 {config.vendor_p50_ms:g} ms,"
                    f" p95 {config.vendor_p95_ms:g} ms)…")
                processes.append(start_simulator(settings=settings, port=port, p50_ms=config.vendor_p50_ms,
                                                 p95_ms=config.vendor_p95_ms, seed=config.seed, log_dir=log_dir))
                simulator_url = f"http://127.0.0.1:{port}"
            places = PlaceIndex(communes)
            jobs = []
            for i in range(config.fanout_queries):
                index = config.warmup + (i % config.queries)
                radius = capture.radius_km[index]
                if radius is None:
                    continue
                query = mix[index]
                lat, lon = places.point(query.insee)
                jobs.append((query, lat, lon, radius))
            log(f"fanout: {len(jobs)} queries through the vendors, {config.clients} clients…")
            fan = run_fanout(settings=settings, simulator_url=simulator_url, jobs=jobs, clients=config.clients,
                             vendor_timeout_s=config.vendor_timeout_s)
            result["fanout"] = summarize(fan.latencies_s, wall_s=fan.wall_s, errors=sum(fan.errors.values()), extra={
                "error_kinds": dict(fan.errors),
                "vendor_requests_per_query_mean": round(sum(fan.vendor_requests) / max(1, len(fan.vendor_requests)), 1),
                "vendor_requests_per_query_max": max(fan.vendor_requests, default=0),
                "practitioners_asked_mean": round(sum(fan.practitioners) / max(1, len(fan.practitioners)), 1),
                "vendor_timeouts": fan.vendor_timeouts,
                "vendor_failures": fan.vendor_failures,
                "slots_returned_mean": round(sum(fan.slots) / max(1, len(fan.slots)), 1),
            })
            log(f"  fanout: {result['fanout']}")
    finally:
        for process in reversed(processes):
            process.stop()

    result["machine"]["loadavg_after"] = [round(v, 2) for v in os.getloadavg()]
    api_p95 = result["api"]["p95_ms"]
    raw_p95 = result["raw_es"]["p95_ms"]
    result["ratios"] = {"api_p95_over_raw_p95": round(api_p95 / raw_p95, 2) if raw_p95 else None}
    result["targets"] = {"api_p95_ms_max": 50, "api_p99_ms_max": 120, "api_over_raw_p95_max": 1.5,
                         "fanout_over_api_p95_min": 20,
                         "api_p95_met": api_p95 <= 50, "api_p99_met": result["api"]["p99_ms"] <= 120,
                         "api_over_raw_met": bool(raw_p95) and api_p95 / raw_p95 <= 1.5,
                         "dataset_met": dataset["offers"] >= 300_000 and dataset["slots_next_7_days"] >= 3_000_000}
    if "saturation" in result:
        sat = result["saturation"]
        result["ratios"]["saturation_api_p95_over_raw_p95"] = (
            round(sat["api"]["p95_ms"] / sat["raw_es"]["p95_ms"], 2) if sat["raw_es"]["p95_ms"] else None)
    if "fanout" in result:
        ratio = result["fanout"]["p95_ms"] / api_p95 if api_p95 else None
        result["ratios"]["fanout_p95_over_api_p95"] = round(ratio, 1) if ratio else None
        result["targets"]["fanout_over_api_met"] = bool(ratio) and ratio >= 20
    return result


def prepare_dataset(*, settings: Settings, places: int, work_dir: Path, config: BenchConfig,
                    log: Callable[[str], None] = print, log_dir: Path | None = None,
                    gp_participation: float = 0.95, other_participation: float = 0.65, vendor_share: float = 0.97,
                    harvest_processes: int = 4) -> dict[str, Any]:
    """Produce the national dataset through the real paths: generate the directory files (RPPS, FINESS,
    participation) → ``indexer.directory.load_directory`` → the vendor simulator (same latency settings
    as the fan-out measurement) → ``indexer.harvest`` full harvest of every vendor over 7 days, in
    ``harvest_processes`` worker processes (``indexer.harvest_workers``).

    Participation: the target state of the platform, most liberal doctors' online agendas aggregated
    (``gp_participation`` of GPs and ``other_participation`` of other liberal doctors take part,
    ``vendor_share`` of them through a vendor), which gives the ≥ 3 M slots over 7 days the benchmark
    asks for with the simulator's realistic fill rates (~35 free slots per place and week)."""
    from concurrent.futures import ThreadPoolExecutor

    from connectors.directory.generator import generate_directory
    from connectors.vendors.config import VendorConfig
    from indexer.addresses import load_addresses
    from indexer.directory import load_directory
    from indexer.harvest_workers import HarvestWorkers
    from indexer.lifecycle import setup_indices
    from sas_core.es import make_client

    log_dir = log_dir or (settings.cache_dir / "bench")
    es = make_client(settings, request_timeout=300)
    setup_indices(es, prefix=settings.index_prefix)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    generated = generate_directory(out_dir=work_dir, places=places, seed=config.seed,
                                   gp_participation=gp_participation, other_participation=other_participation,
                                   vendor_share=vendor_share)
    timings["generate_s"] = round(time.perf_counter() - started, 1)
    log(f"generated {generated.to_dict()}")
    started = time.perf_counter()
    # The generated addresses first (issue 16): places then sit at their addresses, not their commune centres.
    load_addresses(settings=settings, es=es, paths=generated.addresses)
    timings["addresses_load_s"] = round(time.perf_counter() - started, 1)
    started = time.perf_counter()
    summary = load_directory(settings=settings, es=es, rpps_path=generated.rpps, finess_path=generated.finess,
                             participation_path=generated.participation, full=True, progress=False)
    timings["directory_load_s"] = round(time.perf_counter() - started, 1)
    log(f"directory loaded in {timings['directory_load_s']}s")
    es.indices.refresh(index=f"{settings.index_prefix}-offers")
    port = _free_port()
    simulator = start_simulator(settings=settings, port=port, p50_ms=config.vendor_p50_ms, p95_ms=config.vendor_p95_ms,
                                seed=config.seed, log_dir=log_dir)
    try:
        counts = es.search(index=f"{settings.index_prefix}-offers", body={
            "size": 0, "aggs": {"v": {"terms": {"field": "sas.vendor", "size": 100},
                                      "aggs": {"k": {"terms": {"field": "kind"}}}}}})["aggregations"]["v"]["buckets"]
        vendors = []
        for bucket in counts:
            kinds = {k["key"] for k in bucket["k"]["buckets"]}
            use_cases = (["ps", "cpts"] if kinds - {"sos"} else []) + (["sos"] if "sos" in kinds else [])
            vendors.append(VendorConfig(name=bucket["key"], base_url=f"http://127.0.0.1:{port}/{bucket['key']}/fhir",
                                        use_cases=use_cases or ["ps"], timeout_s=config.vendor_timeout_s,
                                        concurrency=32, rate_limit_per_s=None))
        started = time.perf_counter()
        runs = []

        def harvest_one(vendor: VendorConfig) -> None:
            run = workers.run(vendor, mode="full")
            runs.append({k: run.get(k) for k in ("vendor", "status", "requests", "read", "upserted", "rejected")})
            log(f"  harvested {vendor.name}: {runs[-1]}")

        with HarvestWorkers(settings=settings, processes=harvest_processes, vendors=vendors) as workers, \
                ThreadPoolExecutor(harvest_processes) as pool:
            list(pool.map(harvest_one, vendors))
        timings["harvest_s"] = round(time.perf_counter() - started, 1)
    finally:
        simulator.stop()
    es.indices.refresh(index=f"{settings.index_prefix}-slots")
    return {"generated": generated.to_dict(), "directory": getattr(summary, "to_dict", lambda: str(summary))(),
            "participation": {"gp": gp_participation, "other": other_participation, "vendor_share": vendor_share},
            "harvest_runs": runs, "timings": timings}


class PlaceIndex:
    """INSEE code → commune centroid (where the API places ``q`` / ``insee`` of the mix)."""

    def __init__(self, communes: Sequence) -> None:
        self.points = {c.insee: (c.lat, c.lon) for c in communes}

    def point(self, insee: str) -> tuple[float, float]:
        return self.points[insee]


def write_result(result: dict, *, out_dir: Path) -> Path:
    """``bench/results/search-<UTC timestamp>.json`` and ``search-latest.json``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = out_dir / f"search-{stamp}.json"
    text = json.dumps(result, indent=2, ensure_ascii=False) + "\n"
    path.write_text(text)
    (out_dir / "search-latest.json").write_text(text)
    return path


def markdown_table(result: dict) -> str:
    """The README table of one result."""
    rows = ["| load | path | p50 ms | p95 ms | p99 ms | throughput (q/s) | errors |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    think = result.get("load", {}).get("think_ms", 0)
    blocks = [(f"16 clients, think {think:g} ms" if think else "16 clients, no think time", result)]
    if "saturation" in result:
        blocks.append(("16 clients, no think time (capacity)", result["saturation"]))
    for load, block in blocks:
        for key, label in (("api", "API (`GET /v1/search`, HTTP)"), ("raw_es", "Elasticsearch alone (same requests)"),
                           ("fanout", "live fan-out to vendors (baseline)")):
            if key in block:
                r = block[key]
                rows.append(f"| {load} | {label} | {r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} | {r['qps']} | "
                            f"{r['errors']} |")
    return "\n".join(rows)


def _main(argv: list[str]) -> None:
    """``python -m sas_cli.bench_search simulator --port P --p50-ms X --p95-ms Y --seed S``."""
    import argparse

    parser = argparse.ArgumentParser(prog="sas_cli.bench_search")
    sub = parser.add_subparsers(dest="command", required=True)
    sim = sub.add_parser("simulator", help="serve the vendor simulator behind the latency layer")
    sim.add_argument("--port", type=int, required=True)
    sim.add_argument("--p50-ms", type=float, default=250.0)
    sim.add_argument("--p95-ms", type=float, default=1500.0)
    sim.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if args.command == "simulator":
        serve_simulator(port=args.port, p50_ms=args.p50_ms, p95_ms=args.p95_ms, seed=args.seed)


if __name__ == "__main__":
    _main(sys.argv[1:])
