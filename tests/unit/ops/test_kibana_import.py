"""``sas kibana import`` against a local HTTP server that behaves like Kibana's saved-objects import API:
it refuses writes without ``kbn-xsrf``, wants a multipart ``file`` part named ``*.ndjson``, checks the
credentials, and answers ``success`` / ``successCount`` / ``errors`` like Kibana does."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from typer.testing import CliRunner

from bench.common import free_port
from sas_cli.kibana import import_assets, render_assets
from sas_core.errors import BackendUnavailable
from sas_core.settings import Settings


class FakeKibana:
    """Keeps the saved objects it received, by (type, id), per space."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict] = {}
        self.requests: list[dict] = []

    async def import_(self, request: Request):
        space = request.path_params.get("space", "default")
        self.requests.append({"headers": dict(request.headers), "query": dict(request.query_params), "space": space})
        if "kbn-xsrf" not in request.headers:
            return JSONResponse({"statusCode": 400, "error": "Bad Request",
                                 "message": "Request must contain a kbn-xsrf header."}, status_code=400)
        if request.headers.get("authorization") != "Basic " + base64.b64encode(b"elastic:secret").decode():
            return JSONResponse({"statusCode": 401, "error": "Unauthorized"}, status_code=401)
        form = await request.form()
        upload = form.get("file")
        if upload is None or not getattr(upload, "filename", "").endswith(".ndjson"):
            return JSONResponse({"statusCode": 415, "error": "Unsupported Media Type",
                                 "message": "Invalid file extension .txt"}, status_code=415)
        overwrite = request.query_params.get("overwrite") == "true"
        errors, count = [], 0
        for line in (await upload.read()).decode("utf-8").splitlines():
            if not line.strip():
                continue
            obj = json.loads(line)
            key = (space, obj["type"], obj["id"])
            if key in self.objects and not overwrite:
                errors.append({"id": obj["id"], "type": obj["type"], "error": {"type": "conflict"}})
                continue
            self.objects[key] = obj
            count += 1
        return JSONResponse({"success": not errors, "successCount": count, "errors": errors,
                             "successResults": []})


@pytest.fixture(scope="module")
def kibana():
    fake = FakeKibana()
    app = Starlette(routes=[Route("/api/saved_objects/_import", fake.import_, methods=["POST"]),
                            Route("/s/{space}/api/saved_objects/_import", fake.import_, methods=["POST"])])
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    server.install_signal_handlers = lambda: None
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started
    fake.url = f"http://127.0.0.1:{port}"
    yield fake
    server.should_exit = True
    thread.join(timeout=5)


def kibana_settings(url: str, **extra) -> Settings:
    return Settings(kibana_url=url, kibana_username="elastic", kibana_password="secret", index_prefix="sasops", **extra)


def test_import_uploads_the_assets_with_xsrf_and_overwrite(kibana):
    settings = kibana_settings(kibana.url)
    ndjson = render_assets(prefix=settings.index_prefix)
    result = import_assets(settings=settings, ndjson=ndjson)
    lines = [line for line in ndjson.decode().splitlines() if line]
    assert result.success and result.success_count == len(lines) and not result.errors
    last = kibana.requests[-1]
    assert last["headers"]["kbn-xsrf"] and last["query"] == {"overwrite": "true"}
    assert last["headers"]["content-type"].startswith("multipart/form-data")
    titles = {o["attributes"]["title"] for (space, kind, _), o in kibana.objects.items() if kind == "index-pattern"}
    assert {"sasops-slots", "sasops-orientations", "sasops-harvest_runs"} <= titles
    # Importing again overwrites: same objects, no conflict.
    again = import_assets(settings=settings, ndjson=ndjson)
    assert again.success and again.success_count == len(lines)


def test_without_overwrite_conflicts_are_reported(kibana):
    settings = kibana_settings(kibana.url, kibana_space="regulation")
    ndjson = render_assets(prefix=settings.index_prefix)
    assert import_assets(settings=settings, ndjson=ndjson, overwrite=False).success
    assert kibana.requests[-1]["space"] == "regulation"
    second = import_assets(settings=settings, ndjson=ndjson, overwrite=False)
    assert not second.success and second.errors and second.errors[0]["reason"] == "conflict"


def test_refusals_and_unreachable_kibana_are_clear_errors(kibana):
    wrong = Settings(kibana_url=kibana.url, kibana_username="elastic", kibana_password="wrong")
    with pytest.raises(BackendUnavailable, match="HTTP 401"):
        import_assets(settings=wrong, ndjson=render_assets(prefix="x"))
    with pytest.raises(BackendUnavailable, match="cannot be reached"):
        import_assets(settings=kibana_settings(f"http://127.0.0.1:{free_port()}"), ndjson=b"{}\n")


def test_cli_import_reports_the_count(kibana, monkeypatch):
    from sas_cli.main import app

    monkeypatch.setenv("SAS_KIBANA_URL", kibana.url)
    monkeypatch.setenv("SAS_KIBANA_USERNAME", "elastic")
    monkeypatch.setenv("SAS_KIBANA_PASSWORD", "secret")
    monkeypatch.setenv("SAS_INDEX_PREFIX", "clitest")
    result = CliRunner().invoke(app, ["kibana", "import"])
    assert result.exit_code == 0, result.output
    assert "objects imported" in result.output
    assert any(key[2] == "clitest-dv-slots" for key in kibana.objects)
