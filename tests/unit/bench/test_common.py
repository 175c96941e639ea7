"""The helpers every benchmark shares: percentiles, free ports, child processes, the result file."""

from __future__ import annotations

import json
import math
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench.common import ManagedProcess, free_port, machine_facts, percentile, wait_http, write_result


def test_linear_percentile_interpolates_between_ranks():
    values = [float(v) for v in range(1, 101)]          # 1 … 100
    assert percentile(values, 0) == 1.0 and percentile(values, 100) == 100.0
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == pytest.approx(2.5)   # unsorted input


def test_nearest_percentile_is_one_of_the_measurements():
    values = [0.4, 0.1, 0.3, 0.2, 0.5]
    assert percentile(values, 50, method="nearest") == 0.3
    assert percentile(values, 95, method="nearest") == 0.5
    assert percentile(values, 60, method="nearest") in values
    assert percentile([7.0], 95, method="nearest") == 7.0


def test_percentile_of_nothing_is_nan():
    assert math.isnan(percentile([], 95))
    assert math.isnan(percentile([], 95, method="nearest"))


def test_free_port_can_be_bound_at_once():
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
    assert free_port() != 0


class _Ok(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the http.server hook's name
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def test_wait_http_returns_once_the_url_answers():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        wait_http(f"http://127.0.0.1:{server.server_address[1]}/healthz", timeout_s=10)
    finally:
        server.shutdown()
        server.server_close()


def test_wait_http_gives_up_when_the_child_has_exited_or_the_time_is_up():
    url = f"http://127.0.0.1:{free_port()}/healthz"
    with pytest.raises(RuntimeError, match="exited with 3"):
        wait_http(url, timeout_s=30, exit_code=lambda: 3)
    with pytest.raises(RuntimeError, match="did not answer"):
        wait_http(url, timeout_s=0.5)


def test_managed_process_serves_then_stops_and_keeps_its_output(tmp_path):
    port = free_port()
    log_path = tmp_path / "logs" / "child.log"
    child = ManagedProcess([sys.executable, "-u", "-c", "import sys; print('child up'); sys.stdout.flush(); "
                            f"import http.server as h; h.ThreadingHTTPServer(('127.0.0.1', {port}), "
                            "h.SimpleHTTPRequestHandler).serve_forever()"],
                           env={}, log_path=log_path)
    try:
        assert child.wait_http(f"http://127.0.0.1:{port}/", timeout_s=30) is child
    finally:
        child.stop()
    assert child.process.returncode is not None
    assert "child up" in log_path.read_text()


def test_managed_process_that_dies_is_reported_and_stopped(tmp_path):
    child = ManagedProcess([sys.executable, "-c", "raise SystemExit(4)"], env={}, log_path=tmp_path / "dead.log")
    with pytest.raises(RuntimeError, match="exited with 4"):
        child.wait_http(f"http://127.0.0.1:{free_port()}/", timeout_s=30)
    assert child.log.closed


def test_result_file_and_its_copy(tmp_path):
    result = {"benchmark": "x", "city": "Agen", "taken": "créneau", "machine": machine_facts(extra=1)}
    path = write_result(result, tmp_path / "out" / "x.json", also=tmp_path / "out" / "x-latest.json")
    assert path == tmp_path / "out" / "x.json"
    assert json.loads(path.read_text(encoding="utf-8")) == result
    assert (tmp_path / "out" / "x-latest.json").read_text(encoding="utf-8") == path.read_text(encoding="utf-8")
    assert path.read_text(encoding="utf-8").endswith("}\n")
    assert result["machine"]["cpus"] and result["machine"]["python"] and result["machine"]["extra"] == 1
