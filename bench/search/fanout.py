"""The live fan-out baseline, the current national platform's strategy: the participating practitioners near
the point from the directory, then every vendor asked for their free slots at search time."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

import httpx

from bench.search.mix import GP_CODES, BenchQuery
from connectors.vendors.queries import (
    MAX_IDS_PER_REQUEST,
    SOS_IDS_PER_REQUEST,
    batches,
    practitioner_slot_search,
    sos_schedule_search,
)
from mappings.registry import alias_name
from sas_core.clock import utcnow
from sas_core.settings import Settings


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


#: One fan-out query: what is searched, the point, and the radius the API applied to it.
FanoutJob = tuple[BenchQuery, float, float, float]
#: (vendor, ``ps`` | ``sos``) → the ids to ask that vendor about.
VendorIds = dict[tuple[str | None, str], list[str]]


def vendor_ids(hits: list[dict]) -> tuple[VendorIds, int]:
    """The directory's answer grouped by (vendor, ``ps`` | ``sos``): the ids to ask each vendor about, and how
    many practitioners that is."""
    by_vendor: VendorIds = {}
    practitioners = 0
    for hit in hits:
        source = hit["_source"]
        vendor = (source.get("sas") or {}).get("vendor")
        if source.get("kind") == "sos":
            key = (source.get("sos") or {}).get("association_siret")
            if key:
                by_vendor.setdefault((vendor, "sos"), []).append(key)
        elif source.get("national_id"):
            by_vendor.setdefault((vendor, "ps"), []).append(source["national_id"])
            practitioners += 1
    return by_vendor, practitioners


def _vendor_calls(client: httpx.AsyncClient, by_vendor: VendorIds, *, simulator_url: str,
                  window_h: float, vendor_timeout_s: float) -> list:
    """Every vendor request of one query, the national platform's way: ids in batches, all at once."""
    now = utcnow()
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
    return calls


def _count_answers(answers: list, stats: FanoutStats) -> int:
    """Free slots that arrived by the deadline; late and failed vendors counted."""
    slots = 0
    for answer in answers:
        if isinstance(answer, int):
            slots += answer
        elif isinstance(answer, (httpx.TimeoutException, asyncio.TimeoutError)):
            stats.vendor_timeouts += 1
        else:
            stats.vendor_failures += 1
    return slots


async def _fanout_query(client: httpx.AsyncClient, job: FanoutJob, *, es_url: str, offers_alias: str,
                        simulator_url: str, vendor_timeout_s: float, window_h: float, stats: FanoutStats) -> None:
    query, lat, lon, radius_km = job
    started = time.perf_counter()
    specialties = GP_CODES if query.specialty in GP_CODES else (query.specialty,)
    body = fanout_directory_body(lat=lat, lon=lon, radius_km=radius_km, specialties=specialties)
    response = await client.post(f"{es_url}/{offers_alias}/_search", json=body)
    response.raise_for_status()
    by_vendor, practitioners = vendor_ids(response.json()["hits"]["hits"])
    calls = _vendor_calls(client, by_vendor, simulator_url=simulator_url, window_h=window_h,
                          vendor_timeout_s=vendor_timeout_s)
    # The vendor timeout bounds each request as a whole (connection, every page, the answer).
    answers = await asyncio.gather(*(asyncio.wait_for(call, vendor_timeout_s) for call in calls),
                                   return_exceptions=True)
    # The national platform shows what arrived by the deadline: a late or failed vendor is
    # simply missing from the answer, the query itself succeeds.
    slots = _count_answers(answers, stats)
    stats.latencies_s.append(time.perf_counter() - started)
    stats.vendor_requests.append(len(calls))
    stats.practitioners.append(practitioners)
    stats.slots.append(slots)


async def _fanout_run(*, jobs: list[FanoutJob], clients: int, stats: FanoutStats, **query_args) -> None:
    """``clients`` concurrent clients taking the next job as soon as their previous query is answered."""
    queue: asyncio.Queue = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)
    limits = httpx.Limits(max_connections=2000, max_keepalive_connections=500)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def worker() -> None:
            while True:
                try:
                    job = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                try:
                    await _fanout_query(client, job, stats=stats, **query_args)
                except Exception as exc:  # noqa: BLE001 - counted, the run goes on
                    stats.errors[type(exc).__name__] += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        stats.wall_s = time.perf_counter() - started


def run_fanout(*, settings: Settings, simulator_url: str, jobs: list[FanoutJob], clients: int,
               vendor_timeout_s: float = 7.0, window_h: float = 48.0) -> FanoutStats:
    stats = FanoutStats()
    asyncio.run(_fanout_run(jobs=jobs, clients=clients, stats=stats, es_url=settings.es_url.rstrip("/"),
                            offers_alias=alias_name(settings.index_prefix, "offers"),
                            simulator_url=simulator_url.rstrip("/"), vendor_timeout_s=vendor_timeout_s,
                            window_h=window_h))
    return stats
