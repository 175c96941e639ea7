"""Shared pieces of the directory unit tests: sample files, reference tables, a local HTTP server."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from sas_core.settings import Settings

DATA = Path(__file__).resolve().parents[2] / "data" / "directory"
RPPS_SAMPLE = DATA / "PS_LibreAcces_Personne_activite_202501150830.txt"
FINESS_SAMPLE = DATA / "etalab-cs1100507-stock-20250115-0336.csv"
PARTICIPATION_SAMPLE = DATA / "sas-participation-20250115.csv"


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    directory = Settings().reference_data_dir
    assert directory is not None and (directory / "communes_fr.csv").is_file(), "reference data missing"
    return directory


@pytest.fixture(scope="session")
def specialties(reference_dir):
    from connectors.directory.nomenclatures import load_specialties

    return load_specialties(reference_dir)


@pytest.fixture(scope="session")
def communes(reference_dir):
    from connectors.reference import load_communes

    return load_communes(reference_dir)


@pytest.fixture(scope="session")
def gazetteer(communes):
    from connectors.geocoding import Gazetteer

    return Gazetteer(communes)


class LocalServer:
    """A real HTTP server on 127.0.0.1 whose answers a test scripts: ``handler(method, path, headers)``
    returns ``(status, content_type, body_bytes)``; every request is recorded."""

    def __init__(self, handler: Callable[[str, str, dict], tuple[int, str, bytes]]) -> None:
        self.requests: list[tuple[str, str, dict]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server naming
                headers = {k.lower(): v for k, v in self.headers.items()}
                outer.requests.append(("GET", self.path, headers))
                status, content_type, body = handler("GET", self.path, headers)
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> LocalServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def local_server() -> Iterator[Callable[..., LocalServer]]:
    servers: list[LocalServer] = []

    def start(handler) -> LocalServer:
        server = LocalServer(handler).__enter__()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.__exit__(None, None, None)


def json_body(data) -> bytes:
    return json.dumps(data).encode()
