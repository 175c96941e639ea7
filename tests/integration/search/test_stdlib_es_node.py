"""The API's Elasticsearch client on ``http.client`` (``sas_core.es_node.StdlibHttpNode``) gives the same
answers as the client's urllib3 node, and the same errors when the node is unreachable, slow, or closes
its idle connections."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from elastic_transport import ConnectionError, ConnectionTimeout
from elasticsearch import Elasticsearch
from elasticsearch.serializer import OrjsonSerializer

from sas_core.errors import BackendTimeout, BackendUnavailable
from sas_core.es import make_client
from sas_core.es_node import StdlibHttpNode
from search_api.executor import Executor
from tests.guard import GuardedElasticsearch
from tests.integration.search.test_search_response_shape import varied_world  # noqa: F401 - a fixture


@pytest.fixture(scope="module")
def stdlib_api(search_settings, test_prefix, world) -> Iterator:
    from fastapi.testclient import TestClient

    from search_api.app import create_app

    es = GuardedElasticsearch(search_settings.es_url, allowed_prefix=test_prefix, request_timeout=60,
                              node_class=StdlibHttpNode, serializer=OrjsonSerializer())
    assert isinstance(es.transport.node_pool.get(), StdlibHttpNode)
    with TestClient(create_app(search_settings, es=es)) as client:
        yield client
    es.close()


@pytest.mark.usefixtures("varied_world")
@pytest.mark.parametrize("path, params", [
    ("/v1/search", {"q": "47000 Agen", "specialty": "SM54", "slots": "5"}),
    ("/v1/search", {"lat": "44.2028", "lon": "0.6256", "radius_km": "12.5", "sort": "nearest"}),
    ("/v1/search/beyond", {"q": "47000 Agen", "radius_km": "7"}),
])
def test_search_answers_are_those_of_the_urllib3_node(search_api, stdlib_api, token_for, at, path, params):
    # A fixed window ahead (the default one, or a start already past, is each request's "now"): the two
    # answers can be compared byte for byte.
    if path == "/v1/search":
        params = {**params, "from": at(minutes=2).isoformat(), "to": at(hours=24).isoformat()}
    expected = search_api.get(path, params=params, headers=token_for("osnp"))
    got = stdlib_api.get(path, params=params, headers=token_for("osnp"))
    assert expected.status_code == got.status_code == 200, got.text
    assert got.content == expected.content
    assert len(got.json()["results"]) >= 1


def test_the_api_client_uses_the_stdlib_node_on_plain_http(settings):
    client = make_client(settings, stdlib_http=True)
    assert isinstance(client.transport.node_pool.get(), StdlibHttpNode)
    assert client.cluster.health().body["status"] in ("green", "yellow")
    client.close()


def _client(port: int, *, timeout: float = 5.0) -> Elasticsearch:
    return Elasticsearch(f"http://127.0.0.1:{port}", node_class=StdlibHttpNode, request_timeout=timeout,
                         max_retries=0, retry_on_timeout=False)


def test_unreachable_node_is_a_connection_error_then_backend_unavailable():
    with socket.socket() as probe:   # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ConnectionError):
        _client(port).info()
    with pytest.raises(BackendUnavailable):
        Executor(es=_client(port), prefix="x").search_checked(index="slots", body={"size": 0})


def _server(handle) -> tuple[int, threading.Event]:
    """A real TCP server on a free port running ``handle(connection)`` per accepted connection."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    stop = threading.Event()

    def serve() -> None:
        with listener:
            while not stop.is_set():
                try:
                    connection, _ = listener.accept()
                except OSError:
                    return
                threading.Thread(target=handle, args=(connection, stop), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return listener.getsockname()[1], stop


def test_a_node_that_does_not_answer_in_time_is_a_timeout():
    def silent(connection, stop):
        with connection:
            stop.wait(10)

    port, stop = _server(silent)
    try:
        with pytest.raises(ConnectionTimeout):
            _client(port, timeout=0.3).info()
        with pytest.raises(BackendTimeout):
            Executor(es=_client(port, timeout=0.3), prefix="x").search_checked(index="slots", body={"size": 0})
    finally:
        stop.set()


_ANSWER = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Elastic-Product: Elasticsearch\r\n"
           b"Content-Length: 2\r\n\r\n{}")


def test_an_idle_connection_closed_by_the_server_is_replaced():
    connections = []

    def one_answer_then_close(connection, stop):
        connections.append(connection)
        with connection:
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = connection.recv(65536)
                if not chunk:
                    return
                request += chunk
            connection.sendall(_ANSWER)   # keep-alive announced, yet the connection is closed after it

    port, stop = _server(one_answer_then_close)
    try:
        client = _client(port)
        for _ in range(3):
            assert client.perform_request("GET", "/", headers={"accept": "application/json"}).body == {}
        assert len(connections) == 3    # one request per connection: each stale one replaced, no error
    finally:
        stop.set()
