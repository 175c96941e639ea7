"""FHIR R4 client of one vendor: the slot searches over httpx with mutual TLS.

Per vendor: a timeout, a bound on requests in flight (``concurrency``), a rate limit (aiolimiter's
leaky bucket), retries with exponential backoff and jitter on 429 / 5xx / timeouts / connection
failures only (tenacity; a ``Retry-After`` is honoured), ``link[next]`` paging, and a circuit breaker
(purgatory) that stops calling a vendor after repeated failures and probes it again after a while.
Errors are raised as ``VendorError`` with a short machine reason; nothing here knows Elasticsearch.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import time
from collections.abc import Container, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urljoin, urlsplit

import httpx
import orjson
import xxhash
from aiolimiter import AsyncLimiter
from purgatory import AsyncCircuitBreakerFactory
from purgatory.domain.model import OpenedState
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from connectors.vendors.config import VendorConfig
from connectors.vendors.errors import CircuitOpen, VendorError, VendorMalformed, VendorRejected, VendorUnavailable
from connectors.vendors.queries import Search, request_windows, search_request
from sas_core.metrics import CIRCUIT_STATE

FHIR_ACCEPT = "application/fhir+json, application/json+fhir;q=0.9, application/json;q=0.8"
USER_AGENT = "sas-platform-harvester/1"
#: ``sas_vendor_circuit_state`` values (a gauge: alert on ``== 2``).
CIRCUIT_CODES = {"closed": 0, "half-opened": 1, "opened": 2}


@dataclass
class SearchAnswer:
    """The pages of one search (one batch of ids over one window)."""

    pages: list[dict] = field(default_factory=list)
    requests: int = 0        # HTTP requests sent, retries included
    elapsed_s: float = 0.0
    #: Per page: digest of its bytes from its ``entry`` key on (``None``: no such key found, or no
    #: ``known_pages`` given, as in full sweeps, which keep no digest), and its
    #: body. A page whose digest the caller said it knows (``known_pages``) is not decoded: its
    #: ``pages`` item holds the keys before ``entry`` only (``total``, ``link``) and ``unread`` is True.
    digests: list[bytes | None] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    unread: list[bool] = field(default_factory=list)


def _entries_digest(body: bytes) -> tuple[dict, bytes] | None:
    """(the Bundle's keys before ``entry``, digest of the bytes from ``"entry"`` to the end), or ``None``
    when ``entry`` is not a top-level key found that way. The bytes before it (the Bundle's id and
    ``meta.lastUpdated``, new in every answer) are decoded, the rest only hashed: two answers with the
    same digest list the same entries, byte for byte."""
    at = body.find(b'"entry"')
    if at < 0:
        return None
    head = body[:at].rstrip()
    if head.endswith(b","):
        head = head[:-1]
    try:
        # Only a cut at the top level between two keys parses (a nested or quoted ``"entry"`` leaves a
        # bracket open or a dangling value): any doubt is a plain decode.
        parsed = orjson.loads(head + b"}")
    except orjson.JSONDecodeError:
        return None
    if not isinstance(parsed, dict) or not body[at + 7:].lstrip().startswith(b":"):
        return None
    # A view, not a slice: the page is not copied to be hashed. Non-cryptographic, and needs not be: the
    # digests are compared within this process, with the same vendor's earlier pages only.
    return parsed, xxhash.xxh3_128_digest(memoryview(body)[at:])


class BreakerBoard:
    """Circuit breakers of every vendor, kept for the life of the process (across harvest runs)."""

    def __init__(self) -> None:
        # Refused requests (VendorRejected) say nothing about the vendor's health: not counted.
        self.factory = AsyncCircuitBreakerFactory(default_threshold=5, default_ttl=60, exclude=[VendorRejected])

    async def breaker(self, vendor: VendorConfig):
        return await self.factory.get_breaker(vendor.name, threshold=vendor.breaker_threshold,
                                              ttl=vendor.breaker_reset_s)

    async def state(self, vendor: VendorConfig) -> str:
        """``closed``, ``opened`` or ``half-opened``."""
        return (await self.breaker(vendor)).context.state

    async def half_open_in(self, vendor: VendorConfig) -> float:
        """Seconds until the open breaker of ``vendor`` lets a probe through (0 when not open): the
        harvester waits that long before retrying the batches the open breaker refused."""
        context = (await self.breaker(vendor)).context
        if context.state != "opened" or context.opened_at is None:
            return 0.0
        return max(0.0, context.opened_at + context.ttl - time.time())


def _mtime(path) -> float | None:
    try:
        return path.stat().st_mtime if path is not None else None
    except OSError:
        return None


@functools.lru_cache(maxsize=64)
def _cached_context(cert, key, ca, verify: bool, _stamps: tuple) -> ssl.SSLContext:
    # Loading a CA bundle costs tens of milliseconds: one context per TLS set-up, shared by every run
    # (an SSLContext is safe to share between threads). ``_stamps`` (file mtimes) makes a renewed
    # certificate load afresh.
    if cert is None and ca is None and verify:
        return httpx.create_ssl_context()
    context = ssl.create_default_context(cafile=str(ca) if ca else None)
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if cert is not None:
        context.load_cert_chain(str(cert), str(key) if key else None)
    return context


def ssl_context(vendor: VendorConfig) -> ssl.SSLContext:
    """TLS settings of ``vendor``: our client certificate and the CA of its server (mutual TLS); the
    system's defaults (certifi's CA bundle) when the vendors file gives none."""
    tls = vendor.tls
    if tls is None:
        return _cached_context(None, None, None, True, ())
    return _cached_context(tls.cert, tls.key, tls.ca, tls.verify,
                           (_mtime(tls.cert), _mtime(tls.key), _mtime(tls.ca)))


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value and value.strip().isdigit():
        return float(value.strip())
    return None


def _outcome_text(response: httpx.Response) -> str:
    """The diagnostics of an OperationOutcome body, else the start of the body."""
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return response.text[:200]
    if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome":
        texts = [
            str(issue.get("diagnostics") or (issue.get("details") or {}).get("text") or issue.get("code"))
            for issue in body.get("issue") or [] if isinstance(issue, dict)
        ]
        return "; ".join(texts)[:300] or "OperationOutcome"
    return response.text[:200]


class VendorClient:
    """Async client of one vendor for one harvest run (``async with VendorClient(...) as client``)."""

    def __init__(self, vendor: VendorConfig, *, breakers: BreakerBoard | None = None,
                 transport: httpx.AsyncBaseTransport | None = None,
                 known_pages: Container[bytes] | None = None) -> None:
        self.vendor = vendor
        #: Entry digests (``SearchAnswer.digests``) of pages the caller has already read: not decoded again.
        self.known_pages = known_pages
        self.breakers = breakers or BreakerBoard()
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._limiter: AsyncLimiter | None = None
        self._slots: asyncio.Semaphore | None = None
        #: HTTP requests sent (retries included) by this client.
        self.requests = 0
        origin = urlsplit(vendor.base_url)
        self._origin = (origin.scheme, origin.netloc)

    async def __aenter__(self) -> VendorClient:
        vendor = self.vendor
        self._client = httpx.AsyncClient(
            base_url=vendor.base_url + "/",
            timeout=httpx.Timeout(vendor.timeout_s),
            verify=ssl_context(vendor),
            limits=httpx.Limits(max_connections=vendor.concurrency, max_keepalive_connections=vendor.concurrency),
            headers={"Accept": FHIR_ACCEPT, "User-Agent": USER_AGENT},
            transport=self._transport,
        )
        if vendor.rate_limit_per_s:
            # max_rate per 1 s window; a burst as large as the concurrency is allowed.
            self._limiter = AsyncLimiter(max(vendor.rate_limit_per_s, 1.0), 1.0)
        self._slots = asyncio.Semaphore(vendor.concurrency)
        return self

    async def __aexit__(self, *exc_info) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # -- public ---------------------------------------------------------------------------------

    async def search(self, search: Search, *, ids: Sequence[str], start: datetime, end: datetime) -> SearchAnswer:
        """Every page of ``search`` for ``ids`` over [start, end]; ``VendorError`` when any page fails
        (a partial answer is never returned: it is not the whole truth). A window longer than the
        vendor's ``max_window_h`` is asked as consecutive windows, one answer made of all their pages."""
        answer = SearchAnswer()
        began = time.perf_counter()
        totals: list[object] = []
        for low, high in request_windows(start, end, max_hours=self.vendor.max_window_h):
            first = len(answer.pages)
            await self._search_window(search, ids=ids, start=low, end=high, answer=answer)
            totals.append(answer.pages[first].get("total") if len(answer.pages) > first else None)
        if len(totals) > 1 and answer.pages:
            # The answer's first page announces the matches of the whole window (what the harvester
            # compares with the Slots it read): the sum of the windows' totals when each gave one.
            whole = sum(t for t in totals if isinstance(t, int)) if all(isinstance(t, int) for t in totals) else None
            answer.pages[0] = {**answer.pages[0], "total": whole}
            if whole is None:
                answer.pages[0].pop("total")
        answer.elapsed_s = time.perf_counter() - began
        return answer

    async def _search_window(self, search: Search, *, ids: Sequence[str], start: datetime, end: datetime,
                             answer: SearchAnswer) -> None:
        path, params = search_request(search, ids=ids, start=start, end=end, page_size=self.vendor.page_size,
                                      offset=self.vendor.query_utc_offset)
        url: str | None = path
        query: list[tuple[str, str]] | None = params
        seen: set[str] = set()
        pages = 0
        while url is not None:
            if pages >= self.vendor.max_pages:
                raise VendorMalformed("too_many_pages", f"more than {self.vendor.max_pages} pages")
            bundle = await self._get_bundle(url, query, answer)
            pages += 1
            url = self._next_link(bundle)
            query = None
            if url is not None:
                if url in seen:
                    raise VendorMalformed("paging_loop", "link[next] points to a page already read")
                seen.add(url)

    # -- internals ------------------------------------------------------------------------------

    def _next_link(self, bundle: dict) -> str | None:
        for link in bundle.get("link") or []:
            if isinstance(link, dict) and link.get("relation") == "next" and link.get("url"):
                url = urljoin(self.vendor.base_url + "/", str(link["url"]))
                parts = urlsplit(url)
                # Never send our client certificate (nor follow) to another origin.
                if (parts.scheme, parts.netloc) != self._origin:
                    raise VendorMalformed("foreign_next_link", f"link[next] leaves the vendor: {parts.netloc}")
                return url
        return None

    async def _get_bundle(self, url: str, params, answer: SearchAnswer) -> dict:
        """The page at ``url`` (appended to ``answer``)."""
        bundle, body, digest, known = await self._get_page(url, params, answer)
        answer.pages.append(bundle)
        answer.digests.append(digest)
        answer.bodies.append(body if known else b"")   # only an unread page may have to be decoded later
        answer.unread.append(known)
        return bundle

    async def _get_page(self, url: str, params, answer: SearchAnswer) -> tuple[dict, bytes, bytes | None, bool]:
        assert self._slots is not None, "use `async with VendorClient(...)`"
        # The breaker is consulted once a request may really go out (inside the concurrency bound), so
        # that requests queued behind failing ones fail fast instead of all hitting the vendor.
        async with self._slots:
            breaker = await self.breakers.breaker(self.vendor)
            try:
                async with breaker:
                    return await self._get_with_retries(url, params, answer)
            except OpenedState as exc:
                raise CircuitOpen("circuit_open", f"circuit breaker of {self.vendor.name} is open") from exc
            finally:
                CIRCUIT_STATE.labels(self.vendor.name).set(CIRCUIT_CODES.get(breaker.context.state, 0))

    async def _get_with_retries(self, url: str, params,
                                answer: SearchAnswer) -> tuple[dict, bytes, bytes | None, bool]:
        vendor = self.vendor
        exponential = wait_exponential_jitter(multiplier=vendor.backoff_initial_s, max=vendor.backoff_max_s,
                                              jitter=vendor.backoff_initial_s)

        def wait(retry_state) -> float:
            computed = exponential(retry_state)
            exc = retry_state.outcome.exception() if retry_state.outcome else None
            if isinstance(exc, VendorError) and exc.retry_after_s:
                return min(max(computed, exc.retry_after_s), vendor.backoff_max_s)
            return computed

        retrying = AsyncRetrying(
            stop=stop_after_attempt(vendor.max_attempts),
            wait=wait,
            retry=retry_if_exception(lambda exc: isinstance(exc, VendorError) and exc.retryable),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                answer.requests += 1
                return await self._get_once(url, params)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _get_once(self, url: str, params) -> tuple[dict, bytes, bytes | None, bool]:
        """(bundle, body, entry digest, known): decoded unless its entries are ``known_pages``' (then the
        bundle holds its head only); inside the breaker and the retries, as a malformed answer is."""
        assert self._client is not None, "use `async with VendorClient(...)`"
        if self._limiter is not None:
            await self._limiter.acquire()
        self.requests += 1
        try:
            response = await self._client.get(url, params=params)
        except httpx.TimeoutException as exc:
            raise VendorUnavailable("timeout", f"{self.vendor.name}: no answer in {self.vendor.timeout_s}s") from exc
        except httpx.TransportError as exc:
            raise VendorUnavailable("connection_error", f"{self.vendor.name}: {type(exc).__name__}: {exc}") from exc
        status = response.status_code
        if status == 429:
            raise VendorUnavailable("http_429", f"{self.vendor.name}: rate limited ({_outcome_text(response)})",
                                    status=status, retry_after_s=_retry_after(response))
        if status >= 500:
            raise VendorUnavailable(f"http_{status}", f"{self.vendor.name}: HTTP {status}: {_outcome_text(response)}",
                                    status=status, retry_after_s=_retry_after(response))
        if status >= 400:
            raise VendorRejected(f"http_{status}", f"{self.vendor.name}: HTTP {status}: {_outcome_text(response)}",
                                 status=status)
        if status != 200:
            raise VendorMalformed(f"http_{status}", f"{self.vendor.name}: unexpected HTTP {status}", status=status)
        body = response.content
        # The entries' digest serves incremental runs only (``known_pages``: steady batches); a full sweep maps
        # every page and records no digest, so the hash of the whole body (~1 µs a slot) is not computed.
        digest = None
        if self.known_pages is not None and (split := _entries_digest(body)) is not None:
            digest = split[1]
            if digest in self.known_pages and split[0].get("resourceType") == "Bundle":
                # The same entries as a page already read and decoded: its head only (``total``, ``link``).
                return split[0], body, digest, True
        return _decode_bundle(body, self.vendor.name), body, digest, False


def _decode_bundle(body: bytes, vendor: str) -> dict:
    try:
        bundle = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise VendorMalformed("invalid_json", f"{vendor}: answer is not JSON: {exc}") from exc
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        kind = bundle.get("resourceType") if isinstance(bundle, dict) else type(bundle).__name__
        raise VendorMalformed("not_a_bundle", f"{vendor}: answer is a {kind}, not a Bundle")
    return bundle
