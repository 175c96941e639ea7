"""The Elasticsearch requests the API makes for each query of the mix, captured through the API's own
search service and a recording client: what the ``raw_es`` path replays."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from bench.search.mix import BenchQuery
from sas_core.clock import utcnow
from sas_core.settings import Settings

if TYPE_CHECKING:  # the client is imported where it is built
    from elastic_transport import ApiResponse


@dataclass
class RecordedRequest:
    method: str
    path: str                 # with the query string
    body: bytes | None
    content_type: str | None


def uncached(request: RecordedRequest) -> RecordedRequest:
    """``request`` with Elasticsearch's shard request cache off (``request_cache: false`` on each line of
    a multi-search header, in the query string of a search), as the replay must send it.

    The cache keeps the answers of ``size: 0`` bodies (the cards' slots, the counts, the radius probes) by
    their exact bytes until the next refresh. The API never sends the same bytes twice (its windows start at
    the request's millisecond), but the replay sends the very bodies the capture already ran: replayed as
    they are, those parts were answered from the cache (at 1x, the page's round-trip 2.8 ms instead of
    4.9 ms, the cards' ``took`` 0-1 ms instead of 2-3 ms), which measured Elasticsearch doing less than it
    does for the API."""
    base, _, query = request.path.partition("?")
    if base.endswith("/_msearch") and request.body is not None:
        lines = [line for line in request.body.split(b"\n") if line.strip()]
        headers = [{**json.loads(line), "request_cache": False} for line in lines[0::2]]
        body = b"".join(json.dumps(header, separators=(",", ":")).encode() + b"\n" + line + b"\n"
                        for header, line in zip(headers, lines[1::2], strict=True))
        return RecordedRequest(method=request.method, path=request.path, body=body,
                               content_type=request.content_type)
    if base.endswith("/_search"):
        path = f"{base}?{query + '&' if query else ''}request_cache=false"
        return RecordedRequest(method=request.method, path=path, body=request.body, content_type=request.content_type)
    return request


class _Recorder:
    """Where the recording client puts requests (shared with the copies ``options()`` makes)."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []


def _recording_client(url: str, recorder: _Recorder):
    """A real Elasticsearch client that also keeps every request it sends (method, path, body)."""
    from elasticsearch import Elasticsearch

    class RecordingElasticsearch(Elasticsearch):
        def perform_request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                            headers: Mapping[str, str] | None = None, body: Any = None,
                            **kwargs: Any) -> ApiResponse[Any]:
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
    from search_api.params import build_slot_query
    from search_api.search_service import SearchService
    from search_api.services import SearchContext

    recorder = _Recorder()
    client = _recording_client(settings.es_url, recorder)
    from connectors.directory.nomenclatures import load_specialties
    from search_api.geocode import PlaceResolver
    from search_api.specialties import SpecialtyResolver

    context = SearchContext(places=PlaceResolver.from_settings(settings),
                            specialties=SpecialtyResolver(load_specialties(settings.reference_data_dir).labels),
                            service=SearchService(executor=Executor(es=client, prefix=settings.index_prefix),
                                                  report_max_hours=settings.report_max_hours,
                                                  two_passes_from_slots=settings.search_two_passes_from_slots,
                                                  two_passes_when_unknown=settings.search_two_passes_when_unknown,
                                                  count_max_slots=settings.search_count_max_slots),
                            settings=settings)
    principal = Principal(sub="bench-capture", roles=frozenset({Role.OSNP}))
    capture = Capture()
    for _ in range(passes - 1):
        for query in mix:
            params = query.as_dict()
            try:
                context.service.search(build_slot_query(
                    context, principal, now=utcnow(), lat=None, lon=None, q=params.get("q"),
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
                context, principal, now=utcnow(), lat=None, lon=None, q=params.get("q"),
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
