"""Structured logs: one JSON object per line with the request id; access lines never carry the query
string (where a search's address / coordinates — possibly the patient's — would be)."""

from __future__ import annotations

import io
import json
import logging
import sys

import pytest
from asgi_correlation_id import CorrelationIdMiddleware
from fastapi import FastAPI
from fastapi.testclient import TestClient

from sas_core.logging import configure_logging, flush_logs


@pytest.fixture
def captured(monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stdout", stream)
    root = logging.getLogger()
    uvicorn_loggers = [logging.getLogger(name) for name in ("uvicorn", "uvicorn.access")]
    saved = (root.handlers[:], root.level)
    saved_uvicorn = [(lg.handlers[:], lg.propagate, lg.level) for lg in uvicorn_loggers]
    # As under `sas serve` (uvicorn with log_config=None): uvicorn's loggers propagate to the root one.
    # (An earlier test's uvicorn may have given them handlers of their own and stopped propagation.)
    for lg in uvicorn_loggers:
        lg.handlers[:], lg.propagate = [], True
    configure_logging(level="INFO", json_format=True)
    yield stream
    root.handlers[:], root.level = saved
    for lg, (handlers, propagate, level) in zip(uvicorn_loggers, saved_uvicorn, strict=True):
        lg.handlers[:], lg.propagate, lg.level = handlers, propagate, level


def lines(stream: io.StringIO) -> list[dict]:
    flush_logs()   # lines are written by the logging thread
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_log_lines_are_json_with_the_request_id(captured):
    app = FastAPI()
    app.add_middleware(CorrelationIdMiddleware, header_name="X-Request-ID")

    @app.get("/v1/ping")
    def ping() -> dict:
        logging.getLogger("sas.test").info("search answered", extra={"results": 3})
        return {"ok": True}

    with TestClient(app) as client:
        response = client.get("/v1/ping", headers={"X-Request-ID": "0123456789abcdef0123456789abcdef"})
    assert response.headers["X-Request-ID"] == "0123456789abcdef0123456789abcdef"
    (line,) = [entry for entry in lines(captured) if entry["message"] == "search answered"]
    assert line["request_id"] == "0123456789abcdef0123456789abcdef"
    assert line["level"] == "INFO" and line["logger"] == "sas.test" and line["results"] == 3 and line["time"]


def test_access_lines_drop_the_query_string(captured):
    access = logging.getLogger("uvicorn.access")
    access.setLevel(logging.INFO)
    access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET",
                "/v1/search?q=12%20rue%20des%20Lilas%2047000%20Agen&lat=44.2&lon=0.6", "1.1", 200)
    (line,) = [entry for entry in lines(captured) if entry["logger"] == "uvicorn.access"]
    assert "/v1/search" in line["message"]
    assert "Lilas" not in line["message"] and "lat=" not in line["message"] and "?" not in line["message"]
