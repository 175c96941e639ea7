"""What each search request costs the API besides Elasticsearch: token verification remembered until
expiry, a rate limiter that does not start a thread per request, middleware and dependencies that stay
off the thread pool (no network: the app is built on a client that is never called)."""

from __future__ import annotations

import asyncio
import inspect
import threading
import time

import jwt
import pytest

from sas_core.errors import TooManyRequests, Unauthenticated
from sas_core.settings import Settings
from search_api import auth
from search_api.auth import TokenVerifier, issue_dev_token
from search_api.ratelimit import PrincipalRateLimiter


@pytest.fixture()
def settings(tmp_path) -> Settings:
    return Settings(auth_mode="dev", dev_signing_key="unit-test-key-of-32-bytes-or-more!", cache_dir=tmp_path,
                    jwt_leeway_s=0)


def test_verified_token_is_remembered_without_decoding_again(settings, monkeypatch):
    verifier = TokenVerifier(settings)
    token = issue_dev_token(settings=settings, roles=["osnp"], territories=["SAS-47"], sub="op-1")
    assert verifier.cached(token) is None
    first = verifier.verify(token)
    assert verifier.cached(token) == first

    def no_decoding(*_args, **_kwargs):
        raise AssertionError("a remembered token is not decoded again")

    monkeypatch.setattr(auth.jwt, "decode", no_decoding)
    assert verifier.verify(token) == first
    assert verifier.cached(token).sub == "op-1"


def test_remembered_token_expires_with_the_token(settings):
    verifier = TokenVerifier(settings)
    token = issue_dev_token(settings=settings, roles=["osnp"], territories=[], ttl_s=1)
    verifier.verify(token)
    assert verifier.cached(token) is not None
    time.sleep(1.3)
    assert verifier.cached(token) is None
    with pytest.raises(Unauthenticated, match="expired"):
        verifier.verify(token)


def test_refused_tokens_are_not_remembered(settings):
    verifier = TokenVerifier(settings)
    forged = jwt.encode({"sub": "x", "iat": int(time.time()), "exp": int(time.time()) + 600,
                         "iss": auth.DEV_ISSUER, "aud": auth.AUDIENCE, "roles": ["admin"]},
                        "another-key-of-32-bytes-or-more!!!", algorithm="HS256")
    for _ in range(2):
        with pytest.raises(Unauthenticated):
            verifier.verify(forged)
        assert verifier.cached(forged) is None


def test_remembered_for_at_most_the_cache_bound(settings, monkeypatch):
    monkeypatch.setattr(auth, "TOKEN_CACHE_MAX_S", 0.5)
    verifier = TokenVerifier(settings)
    token = issue_dev_token(settings=settings, roles=["osnp"], territories=[], ttl_s=3600)
    verifier.verify(token)
    assert verifier.cached(token) is not None
    time.sleep(0.7)
    assert verifier.cached(token) is None
    assert verifier.verify(token).roles       # verified again, still valid


def test_rate_limit_still_enforced_without_a_thread_per_hit():
    started: list[threading.Thread] = []
    original = threading.Thread.start

    def counting(self):
        started.append(self)
        return original(self)

    limiter = PrincipalRateLimiter("20/second")
    threading.Thread.start = counting
    try:
        for _ in range(20):
            limiter.check("op-1")
            time.sleep(0.015)   # longer than the stock storage's 10 ms clean-up timer
        with pytest.raises(TooManyRequests) as refused:
            limiter.check("op-1")
        limiter.check("op-2")   # per principal
    finally:
        threading.Thread.start = original
    assert refused.value.retry_after_s >= 1
    assert len(started) <= 1
    time.sleep(1.05)
    limiter.check("op-1")       # the moving window moved on


def test_search_dependencies_and_middleware_stay_on_the_event_loop():
    from search_api.deps import get_principal, roles
    from search_api.middleware import MetricsAndHeadersMiddleware
    from search_api.services import get_search_context as get_context

    # FastAPI runs plain ``def`` dependencies in the thread pool: each would be a thread hop per search.
    for dependency in (get_principal, roles(), get_context):
        assert inspect.iscoroutinefunction(dependency), dependency
    from starlette.middleware.base import BaseHTTPMiddleware

    assert not issubclass(MetricsAndHeadersMiddleware, BaseHTTPMiddleware)


def test_metrics_middleware_adds_security_headers_and_observes_the_status():
    from search_api.middleware import SECURITY_HEADERS, MetricsAndHeadersMiddleware

    sent: list[dict] = []

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 418, "headers": [(b"cache-control", b"max-age=5")]})
        await send({"type": "http.response.body", "body": b"tea"})

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "http.request", "body": b""}

    middleware = MetricsAndHeadersMiddleware(app)
    asyncio.run(middleware({"type": "http", "method": "GET", "scheme": "https", "path": "/x", "headers": []},
                           receive, send))
    headers = {k.decode(): v.decode() for k, v in sent[0]["headers"]}
    assert sent[0]["status"] == 418 and sent[1]["body"] == b"tea"
    assert headers["cache-control"] == "max-age=5"           # the app's own header is kept
    assert headers["x-frame-options"] == SECURITY_HEADERS["X-Frame-Options"]
    assert headers["strict-transport-security"].startswith("max-age=")
