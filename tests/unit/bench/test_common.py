"""The helpers every benchmark shares: percentiles, free ports, child processes, the result file."""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

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


_BENCH_WITH_A_CHILD = """
import sys, time
from pathlib import Path
from bench.common import ManagedProcess, stop_children_on_sigterm
if sys.argv[1] == "handled":
    stop_children_on_sigterm()
child = ManagedProcess([sys.executable, "-c", "import time; time.sleep(120)"], env={},
                       log_path=Path(sys.argv[2]))
try:
    print(child.pid, flush=True)
    time.sleep(120)
finally:
    child.stop()
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (already exited, not yet reaped by init) is not running.
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().split(") ", 1)[1][:1] != "Z"


@pytest.mark.parametrize("handled", [True, False])
def test_sigterm_stops_a_benchmarks_children_only_when_handled(tmp_path, handled):
    bench = subprocess.Popen([sys.executable, "-c", _BENCH_WITH_A_CHILD, "handled" if handled else "default",
                              str(tmp_path / "child.log")], stdout=subprocess.PIPE, text=True,
                             cwd=Path(__file__).resolve().parents[3])
    child_pid = int(bench.stdout.readline())
    try:
        assert _alive(child_pid)
        bench.send_signal(signal.SIGTERM)
        assert bench.wait(timeout=30) == (128 + signal.SIGTERM if handled else -signal.SIGTERM)
        deadline = time.monotonic() + (10 if handled else 2)
        while _alive(child_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        # Python's default SIGTERM leaves the child (in its own session) running: what the handler is for.
        assert _alive(child_pid) is (not handled)
    finally:
        if _alive(child_pid):
            os.kill(child_pid, signal.SIGKILL)
        bench.stdout.close()


def test_every_bench_command_stops_its_children_on_sigterm():
    from typer.testing import CliRunner

    from sas_cli.bench import app

    before = signal.getsignal(signal.SIGTERM)
    try:
        # The group's callback runs before the command parses its options (refused here: nothing runs).
        result = CliRunner().invoke(app, ["directory", "--no-such-option"])
        assert result.exit_code == 2
        handler = signal.getsignal(signal.SIGTERM)
        assert callable(handler) and handler is not before
        with pytest.raises(SystemExit) as stopped:
            handler(signal.SIGTERM, None)
        assert stopped.value.code == 128 + signal.SIGTERM
    finally:
        signal.signal(signal.SIGTERM, before)
