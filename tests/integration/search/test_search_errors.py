"""Bad input gets a clear 4xx; Elasticsearch failures become typed answers (400, 503 + Retry-After, 504)."""

from __future__ import annotations

import socket
import threading

import pytest
from elasticsearch import Elasticsearch
from fastapi.testclient import TestClient

from sas_core.errors import BackendTimeout, BackendUnavailable, BadRequest
from search_api.app import create_app
from search_api.executor import Executor


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({}, "say where to search"),
        ({"lat": "100", "lon": "0.6"}, "lat/lon out of range"),
        ({"lat": "44.2"}, "lat and lon go together"),
        ({"lat": "north", "lon": "0.6"}, "lat"),
        ({"q": "47000", "insee": "47001"}, "only one of"),
        ({"q": "99999"}, "unknown postcode"),
        ({"q": "Xyzzyville-sur-Rien"}, "cannot place"),
        ({"insee": "ABCDE"}, "INSEE"),
        ({"q": "47000", "specialty": "SM99"}, "unknown specialty code"),
        ({"q": "47000", "specialty": "astrologie"}, "unknown specialty"),
        ({"q": "47000", "radius_km": "0"}, "radius_km must be between"),
        ({"q": "47000", "radius_km": "500"}, "radius_km must be between"),
        ({"q": "47000", "from": "2030-01-02T10:00:00+01:00", "to": "2030-01-01T10:00:00+01:00"}, "must be before"),
        ({"q": "47000", "from": "tomorrow"}, "ISO 8601"),
        ({"q": "47000", "within": "1-2h"}, "unknown within"),
        ({"q": "47000", "within": "0-4h", "from": "2030-01-01T10:00:00"}, "either within or from/to"),
        ({"q": "47000", "from": "2030-01-01T10:00:00", "to": "2030-03-01T10:00:00"}, "may not exceed"),
        ({"q": "47000", "to": "2001-01-01T10:00:00"}, "past"),
        ({"q": "47000", "modes": "AMB,TEL"}, "unknown modes"),
        ({"q": "47000", "kinds": "hospital"}, "unknown kinds"),
        ({"q": "47000", "sector": "4"}, "unknown sector"),
        ({"q": "47000", "sort": "random"}, "unknown sort"),
        ({"q": "47000", "page": "60", "size": "20"}, "may not exceed"),
        ({"q": "47000", "size": "1000"}, "size"),
    ],
)
def test_bad_input_is_a_clear_4xx(search_api, token_for, params, fragment):
    response = search_api.get("/v1/search", params=params, headers=token_for("osnp"))
    assert 400 <= response.status_code < 500, response.text
    assert fragment.lower() in response.json()["message"].lower()


def test_authentication_and_roles(search_api, token_for):
    assert search_api.get("/v1/search", params={"q": "47000"}).status_code == 401
    assert search_api.get("/v1/search", params={"q": "47000"}, headers=token_for("vendor")).status_code == 403
    assert search_api.get("/v1/search", params={"q": "47000"}, headers=token_for("account_manager")).status_code == 403
    for role in ("osnp", "regulator", "effecteur", "structure_manager", "integrator", "admin"):
        assert search_api.get("/v1/search", params={"q": "47000"}, headers=token_for(role)).status_code == 200, role
    assert search_api.get("/v1/cpts/x", headers=token_for("vendor")).status_code == 403
    assert search_api.get("/v1/search/beyond", params={"q": "47000"}, headers=token_for("vendor")).status_code == 403


def test_openapi_documents_the_contract_with_examples(search_api):
    spec = search_api.get("/openapi.json").json()
    operation = spec["paths"]["/v1/search"]["get"]
    names = {p["name"] for p in operation["parameters"]}
    assert {"lat", "lon", "q", "insee", "radius_km", "specialty", "from", "to", "within", "modes", "kinds", "sector",
            "bookable_only", "sort", "page", "size", "explain"} <= names
    schema = spec["components"]["schemas"]["SearchOut"]
    example = schema["examples"][0]
    assert {"total", "radius_km", "results", "beyond"} <= set(example)
    assert {"offer", "distance_km", "slots"} <= set(example["results"][0])
    assert "/v1/search/beyond" in spec["paths"] and "/v1/cpts/{cpts_id}" in spec["paths"]


# --- Elasticsearch failures --------------------------------------------------------------------------------


class _SilentServer:
    """A real TCP server that accepts connections and never answers (an overloaded node)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.connections: list[socket.socket] = []
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections.append(conn)

    def close(self) -> None:
        self._stop = True
        for conn in self.connections:
            conn.close()
        self.sock.close()


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_unreachable_elasticsearch_is_503_with_retry_after(search_settings, token_for):
    es = Elasticsearch(f"http://127.0.0.1:{_closed_port()}", request_timeout=2, max_retries=0)
    with TestClient(create_app(search_settings, es=es)) as client:
        response = client.get("/v1/search", params={"q": "47000"}, headers=token_for("osnp"))
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) > 0
    assert response.json()["error"] == "backend_unavailable"


def test_elasticsearch_too_slow_is_504(search_settings, token_for):
    server = _SilentServer()
    try:
        es = Elasticsearch(f"http://127.0.0.1:{server.port}", request_timeout=0.5, max_retries=0)
        with TestClient(create_app(search_settings, es=es)) as client:
            response = client.get("/v1/search", params={"q": "47000"}, headers=token_for("osnp"))
        assert response.status_code == 504
        assert response.json()["error"] == "backend_timeout"
    finally:
        server.close()


def test_executor_maps_refused_queries_and_failed_items(es, world):
    executor = Executor(es=es, prefix=world.prefix)
    with pytest.raises(BadRequest):
        executor.search_checked(index="slots", body={"query": {"range": {"start": {"gte": "not a date"}}}})
    with pytest.raises(BadRequest):
        executor.msearch(searches=[("slots", {"size": 0}), ("slots", {"query": {"no_such_query": {}}})])
    silent = _SilentServer()
    try:
        slow = Executor(es=Elasticsearch(f"http://127.0.0.1:{silent.port}", max_retries=0), prefix=world.prefix)
        with pytest.raises(BackendTimeout):
            slow.msearch(searches=[("slots", {"size": 0})], timeout_s=0.3)
    finally:
        silent.close()
    dead = Executor(es=Elasticsearch(f"http://127.0.0.1:{_closed_port()}", max_retries=0), prefix=world.prefix)
    with pytest.raises(BackendUnavailable) as raised:
        dead.mget_sources(index="offers", ids=["x"])
    assert raised.value.retry_after_s > 0
