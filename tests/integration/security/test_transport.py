"""Issue 15, points 3, 13 and 8 (parts): request bodies bounded and never read before the caller is
authenticated, failed authentication throttled per client address and verified off the event loop,
claims of the wrong type refused with a 401, and the security headers on every answer, 500s included.

The memory and latency attacks run against the real API in its own uvicorn process (``ApiProcess``);
the formats of the refusals are checked on the real app in process."""

from __future__ import annotations

import asyncio
import json
import secrets
import statistics
import time
from urllib.parse import urlparse

import httpx
import pytest
from fastapi.testclient import TestClient

from search_api.app import create_app
from search_api.middleware import SECURITY_HEADERS
from tests.integration.security.transport_server import ApiProcess, exchange
from tests.slow_proxy import SlowProxy

MIB = 1024 * 1024


def _padding_json(size: int) -> bytes:
    """A JSON command of about ``size`` bytes whose parsing is costly (many small strings)."""
    count = size // 6
    return json.dumps({"slot_id": "acme:slot-1", "mode": "redirect", "notes": ["abc"] * count}).encode()


def _bad_key() -> str:
    """A well-formed API key that does not exist (each one a different id)."""
    return f"sas_{secrets.token_hex(8)}_{secrets.token_urlsafe(32)}"


def _assert_security_headers(response) -> None:
    for header, value in SECURITY_HEADERS.items():
        assert response.headers.get(header) == value, (header, response.status_code)


# --- point 3, in process: the refusals and their formats ---------------------------------------------


def test_oversized_body_refused_on_its_declared_length_before_authentication(api):
    response = api.post("/v1/bookings", content=_padding_json(100_000), headers={"Content-Type": "application/json"})
    assert response.status_code == 413, response.text
    assert response.json()["error"] == "payload_too_large"
    assert "16384" in response.json()["message"]
    assert response.headers["connection"] == "close"
    _assert_security_headers(response)


def test_a_body_is_not_parsed_before_the_caller_is_authenticated(api, token_for):
    """Before the change FastAPI read and parsed the body first: broken JSON without credentials got a
    422 from the parser (the 9 MB body of the probe was held in memory to answer 401 afterwards)."""
    broken = b'{"slot_id": "acme:slot-1", "mode": '
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"X-API-Key": _bad_key()}):
        response = api.post("/v1/bookings", content=broken, headers={"Content-Type": "application/json", **headers})
        assert response.status_code == 401, (headers, response.text)
        assert response.json()["error"] == "unauthenticated"
        assert response.headers["www-authenticate"].startswith("Bearer")
    # Authenticated, the route parses the body as before (and verifies the credentials only once).
    authorised = api.post("/v1/bookings", content=broken, headers={"Content-Type": "application/json",
                                                                    **token_for("regulator", territories=["SAS-92"])})
    assert authorised.status_code == 422, authorised.text


def test_a_streamed_body_is_counted_and_cut_at_the_limit(api, token_for):
    def chunks():
        for _ in range(40):
            yield b" " * 8192   # 320 KiB of JSON whitespace, no Content-Length

    headers = {"Content-Type": "application/json", **token_for("regulator", territories=["SAS-92"])}
    response = api.post("/v1/bookings", content=chunks(), headers=headers)
    assert response.status_code == 413, response.text
    assert response.json()["error"] == "payload_too_large"
    _assert_security_headers(response)


def test_limits_per_route(api, token_for):
    effecteur = token_for("effecteur", national_id="810009990001")
    # The largest legitimate agenda call (500 slots with 200-character motives, JSON-escaped: 680 KB) is not
    # refused for its size.
    items = [{"start": "2030-01-07T08:00:00+01:00", "end": "2030-01-07T08:15:00+01:00", "modes": ["AMB", "VR"],
              "types": ["SNP", "CPTS"], "capacity": 100, "motive": "é" * 200} for _ in range(500)]
    batch = json.dumps({"offer_id": "ps-810009990001-unknown", "items": items}).encode()
    assert 512 * 1024 < len(batch) < 1024 * 1024
    published = api.post("/v1/agenda/slots", content=batch, headers={"Content-Type": "application/json", **effecteur})
    assert published.status_code not in (413, 500), published.text
    too_big = api.post("/v1/agenda/slots", content=b" " * (1100 * 1024),
                       headers={"Content-Type": "application/json", **effecteur})
    assert too_big.status_code == 413
    # A JSON command elsewhere: a few KB.
    report = api.post("/v1/declarations/reports", content=b" " * (20 * 1024),
                      headers={"Content-Type": "application/json", **token_for("regulator", territories=["SAS-92"])})
    assert report.status_code == 413


def test_fhir_bodies_are_bounded_with_an_operation_outcome(api, token_for):
    vendor = token_for("vendor", name="medilib")
    resource = {"resourceType": "Appointment", "status": "booked", "comment": "x" * (100 * 1024)}
    response = api.post("/fhir/Appointment", content=json.dumps(resource).encode(),
                        headers={"Content-Type": "application/fhir+json", **vendor})
    assert response.status_code == 413, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "too-long"
    _assert_security_headers(response)


def test_web_forms_are_bounded_with_a_french_page(api):
    response = api.post("/login", content=b"a=" + b"x" * (100 * 1024),
                        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("text/html")
    assert "Requête trop volumineuse" in response.text


# --- point 3, a real uvicorn process: the body is never held in memory -------------------------------


@pytest.fixture(scope="module")
def api_process(settings, indices, tmp_path_factory):
    with ApiProcess(settings, tmp_path_factory.mktemp("transport-api"), SAS_AUTH_FAILURE_LIMIT="10/minute") as server:
        yield server


def _warm_up(server: ApiProcess, headers: dict) -> None:
    """First requests import and allocate what every later one reuses: not the attack's memory."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for _ in range(5):
            client.post("/v1/bookings", json={"slot_id": "acme:slot-warm-up"}, headers=headers)
            client.post("/v1/bookings", json={"slot_id": "acme:slot-warm-up"})
            client.get("/healthz")


def test_20_mb_without_credentials_leaves_the_api_memory_alone(api_process, token_for):
    """The probe: 9 MB to /v1/bookings without credentials took the API from 202 to 378 MB. Here 20 MB,
    declared, then streamed (chunked) without and with credentials; the peak resident memory of the
    process (``VmHWM``, which no later release can hide) may not grow by more than 8 MiB in all."""
    regulator = token_for("regulator", territories=["SAS-92"])
    _warm_up(api_process, regulator)
    peak_before = api_process.memory_kib("VmHWM")
    body = _padding_json(20 * MIB)
    head = (f"POST /v1/bookings HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    started = time.perf_counter()
    status, answer, sent = exchange(api_process.port, head, [body[i:i + 65536] for i in range(0, len(body), 65536)],
                                    answer_first_s=2.0)
    assert status == 413, answer[:300]
    assert sent == 0, "the refusal must come before any byte of the body"
    assert time.perf_counter() - started < 2.0

    def chunked(total: int):
        piece = b" " * 65536
        for _ in range(total // len(piece)):
            yield b"%x\r\n" % len(piece) + piece + b"\r\n"
        yield b"0\r\n\r\n"

    for credentials, expected in (("", 401), (f"Authorization: {regulator['Authorization']}\r\n", 413)):
        head = (f"POST /v1/bookings HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Transfer-Encoding: chunked\r\n{credentials}\r\n")
        status, answer, sent = exchange(api_process.port, head, chunked(20 * MIB))
        assert status == expected, answer[:300]
        assert sent < 20 * MIB, "the server must stop taking the body once it has refused it"
    grown_kib = api_process.memory_kib("VmHWM") - peak_before
    assert grown_kib < 8 * 1024, f"the API's peak memory grew by {grown_kib} KiB"
    # The API still serves.
    assert httpx.get(f"{api_process.url}/healthz", timeout=10).status_code == 200


# --- point 13: failed authentication throttled per address, verified off the event loop --------------


def _api_key_gets(es, settings) -> int:
    """Documents read by id from the api_keys index so far (Elasticsearch's own statistics)."""
    stats = es.indices.stats(index=f"{settings.index_prefix}-api_keys", metric="get")
    return stats["_all"]["total"]["get"]["total"]


def test_bad_keys_from_one_address_are_throttled(api_process, api, es, settings, token_for):
    """Before: every random key cost an Elasticsearch read and got a 401, without end. Now 10 failures a
    minute per address (``SAS_AUTH_FAILURE_LIMIT``), then 429 + Retry-After without any read; another
    address is not concerned, and a token verified lately keeps working from the throttled address."""
    good_key, _ = api.app.state.api_keys.create(name="throttle test", territories=["SAS-92"], created_by="tests")
    other = httpx.Client(base_url=api_process.url, timeout=10,
                         transport=httpx.HTTPTransport(local_address="127.0.0.2"))
    attacker = httpx.Client(base_url=api_process.url, timeout=10,
                            transport=httpx.HTTPTransport(local_address="127.0.0.3"))
    colleague = token_for("regulator", territories=["SAS-92"], sub="throttle-colleague")
    with other, attacker:
        assert attacker.get("/v1/me", headers=colleague).status_code == 200   # verified before the attack
        gets_before = _api_key_gets(es, settings)
        statuses = [attacker.get("/v1/me", headers={"X-API-Key": _bad_key()}).status_code for _ in range(60)]
        assert statuses[:10] == [401] * 10
        assert set(statuses[10:]) == {429}, statuses
        throttled = attacker.get("/v1/me", headers={"X-API-Key": _bad_key()})
        assert throttled.json()["error"] == "rate_limited"
        assert 1 <= int(throttled.headers["Retry-After"]) <= 60
        assert _api_key_gets(es, settings) - gets_before <= 10, "a throttled key must cost no Elasticsearch read"
        # Bad tokens count alike, and /fhir answers the throttle with an OperationOutcome.
        assert attacker.get("/v1/me", headers={"Authorization": "Bearer forged"}).status_code == 429
        fhir = attacker.post("/fhir/Appointment", content=b"{}", headers={"X-API-Key": _bad_key(),
                                                                           "Content-Type": "application/fhir+json"})
        assert fhir.status_code == 429 and fhir.json()["issue"][0]["code"] == "throttled"
        # Not verified lately: refused unchecked from the throttled address; from another address, it works.
        assert attacker.get("/v1/me", headers={"X-API-Key": good_key}).status_code == 429
        assert other.get("/v1/me", headers={"X-API-Key": good_key}).status_code == 200
        assert attacker.get("/v1/me", headers=colleague).status_code == 200


def test_the_same_unknown_key_again_costs_no_elasticsearch_read(api_process, es, settings):
    bad = _bad_key()
    with httpx.Client(base_url=api_process.url, timeout=10,
                      transport=httpx.HTTPTransport(local_address="127.0.0.4")) as client:
        gets_before = _api_key_gets(es, settings)
        assert [client.get("/v1/me", headers={"X-API-Key": bad}).status_code for _ in range(5)] == [401] * 5
        assert _api_key_gets(es, settings) - gets_before == 1


@pytest.fixture(scope="module")
def slow_es_process(settings, indices, tmp_path_factory):
    """The API, without the failure throttle, whose Elasticsearch answers 200 ms late: each API key it
    has to look up takes that long, and what is measured is where that wait happens."""
    upstream = urlparse(settings.es_url)
    with SlowProxy((upstream.hostname, upstream.port or 9200), delay_s=0.2) as proxy, \
            ApiProcess(settings, tmp_path_factory.mktemp("transport-loop"), SAS_AUTH_FAILURE_LIMIT="",
                       SAS_ES_URL=f"http://127.0.0.1:{proxy.port}") as server:
        yield server


async def _probe_during_burst(url: str, *, keys: int, attackers: int) -> tuple[list[float], list[float], list[int]]:
    """``/healthz`` latencies alone, then while ``attackers`` connections send ``keys`` bad API keys to
    ``/fhir/Appointment`` of the main app (each key a different id: an Elasticsearch read each)."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as probe, \
            httpx.AsyncClient(base_url=url, timeout=30,
                              limits=httpx.Limits(max_connections=attackers + 2)) as attack:
        async def healthz() -> float:
            began = time.perf_counter()
            assert (await probe.get("/healthz")).status_code == 200
            return time.perf_counter() - began

        baseline = [await healthz() for _ in range(20)]
        statuses: list[int] = []
        remaining = keys

        async def attacker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                answer = await attack.post("/fhir/Appointment", content=b"{}", headers={
                    "X-API-Key": _bad_key(), "Content-Type": "application/fhir+json"})
                statuses.append(answer.status_code)

        tasks = [asyncio.create_task(attacker()) for _ in range(attackers)]
        await asyncio.sleep(0.3)
        during = []
        while not all(task.done() for task in tasks):
            during.append(await healthz())
            await asyncio.sleep(0.01)
        await asyncio.gather(*tasks)
        return baseline, during, statuses


def test_healthz_stays_fast_while_bad_keys_are_verified(slow_es_process):
    """The probe: ``/healthz`` p50 went from 3.7 to 51 ms during 1,000 bad keys sent to /fhir, which
    looked each key up in Elasticsearch with a blocking call on the event loop. With a node answering
    200 ms late, that blocking made ``/healthz`` wait about that long; verified in the thread pool, the
    loop answers it at once (the bound leaves a wide margin for a busy shared machine)."""
    baseline, during, statuses = asyncio.run(_probe_during_burst(slow_es_process.url, keys=40, attackers=4))
    assert set(statuses) == {401}, "every key must have been looked up (no throttle here)"
    assert len(during) >= 10, "the burst ended before the probe could measure it"
    p50_before, p50_during = statistics.median(baseline), statistics.median(during)
    assert p50_during < max(0.050, 3 * p50_before), (
        f"/healthz p50 {p50_during * 1000:.1f} ms during the burst, {p50_before * 1000:.1f} ms before")


# --- point 8: claims of the wrong type, and the security headers of a 500 ----------------------------


@pytest.fixture()
def oidc_client(settings, es, indices):
    from tests.integration.test_api_foundation import _Jwks

    jwks = _Jwks()
    oidc_settings = settings.model_copy(update={
        "auth_mode": "oidc", "oidc_issuer": "https://idp.test", "oidc_audience": "sas-api",
        "oidc_jwks_url": jwks.url, "oidc_jwks_refresh_cooldown_s": 0, "public_base_url": "https://sas.test"})
    with TestClient(create_app(oidc_settings, es=es), raise_server_exceptions=False) as client:
        yield jwks, client
    jwks.server.shutdown()


@pytest.mark.parametrize("claims, named", [
    ({"national_id": 810009990001}, "national_id"),
    ({"national_id": ["810009990001"]}, "national_id"),
    ({"name": {"given": "Alice"}}, "name"),
    ({"structure_id": 920099901}, "structure_id"),
    ({"roles": {"regulator": True}}, "roles"),
    ({"territories": ["SAS-92", 47]}, "territories"),
])
def test_a_claim_of_the_wrong_type_is_a_401_not_a_500(oidc_client, claims, named):
    jwks, client = oidc_client
    kid = jwks.rotate()
    assert client.get("/v1/me", headers={"Authorization": f"Bearer {jwks.sign(kid)}"}).status_code == 200
    response = client.get("/v1/me", headers={"Authorization": f"Bearer {jwks.sign(kid, **claims)}"})
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "unauthenticated"
    assert f"'{named}'" in response.json()["message"]


def test_an_unhandled_exception_answers_500_with_the_security_headers(settings, es, indices):
    """The real app (every middleware and handler) with one more route that really fails: before the
    change, Starlette's outermost error middleware answered the 500 without any security header."""
    app = create_app(settings, es=es)

    async def broken() -> dict:
        raise RuntimeError("a bug")

    app.add_api_route("/v1/test-broken", broken)
    app.add_api_route("/fhir/test-broken", broken)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/v1/test-broken")
        assert response.status_code == 500
        _assert_security_headers(response)
        assert response.json() == {"error": "internal_error", "message": "internal error"}
        assert len(response.headers["X-Request-ID"]) == 32
        fhir = client.get("/fhir/test-broken")
        assert fhir.status_code == 500
        _assert_security_headers(fhir)
        assert fhir.json()["resourceType"] == "OperationOutcome"
        assert fhir.json()["issue"][0]["code"] == "exception"


def test_bad_keys_on_the_pages_count_against_the_same_address(api_process):
    """Pages accept API credentials too (without a session cookie): their failures feed the same
    throttle, so guessing keys through ``/app/*`` is no way around it."""
    with httpx.Client(base_url=api_process.url, timeout=10,
                      transport=httpx.HTTPTransport(local_address="127.0.0.5")) as client:
        statuses = [client.get("/app/recherche", headers={"X-API-Key": _bad_key()}).status_code for _ in range(10)]
        assert statuses == [401] * 10
        assert client.get("/app/recherche", headers={"X-API-Key": _bad_key()}).status_code == 429
        assert client.get("/v1/me", headers={"X-API-Key": _bad_key()}).status_code == 429
