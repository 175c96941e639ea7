"""Issue 17, point 13: ``sas run`` on a first start. A port already taken ends in one line naming the port and
the setting that moves it (exit code 1, no traceback), before anything starts; the periodic INFO logs go to a
file and only warnings reach the console, so the printed URL and token stay on screen."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from bench.common import free_port
from sas_core.logging import configure_logging, flush_logs


def _bound(host: str = "127.0.0.1") -> socket.socket:
    """A real listening socket on a free port (what another program holding the port looks like)."""
    held = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    held.bind((host, 0))
    held.listen(1)
    return held


def _sas_run(tmp_path: Path, *, api_port: int, simulator_port: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "SAS_API_PORT": str(api_port), "SAS_SIMULATOR_PORT": str(simulator_port),
           "SAS_CACHE_DIR": str(tmp_path), "SAS_INDEX_PREFIX": f"test-run-{uuid.uuid4().hex[:8]}",
           "SAS_VENDORS_FILE": str(tmp_path / "vendors.yaml"), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "sas_cli.main", "run"], check=False, env=env, capture_output=True,
                          text=True, timeout=60)


@pytest.mark.parametrize("taken, setting", [("api", "SAS_API_PORT"), ("simulator", "SAS_SIMULATOR_PORT")])
def test_a_port_in_use_ends_in_one_line_naming_the_port_and_its_setting(tmp_path, taken, setting):
    held = _bound()
    try:
        port = held.getsockname()[1]
        other = free_port()
        ports = {"api_port": port, "simulator_port": other} if taken == "api" else {"api_port": other,
                                                                                     "simulator_port": port}
        done = _sas_run(tmp_path, **ports)
    finally:
        held.close()
    assert done.returncode == 1, (done.returncode, done.stdout[-2000:], done.stderr[-2000:])
    assert "Traceback" not in done.stderr + done.stdout
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert f"port {port} " in lines[0] and "already in use" in lines[0] and setting in lines[0]
    # Nothing was started: no simulator log, no banner.
    assert not (tmp_path / "demo" / "simulator.log").exists() and "Web interface" not in done.stdout


def test_run_logs_info_to_the_file_and_only_warnings_to_the_console(tmp_path, capfd):
    log_file = tmp_path / "demo" / "sas-run.log"
    try:
        configure_logging(level="INFO", json_format=True, log_file=log_file, console_level="WARNING")
        logging.getLogger("indexer.harvest").info("harvest done: 12 slots")
        logging.getLogger("indexer.harvest").warning("vendor medilib unreachable")
        flush_logs()
        console = capfd.readouterr().out
        written = [json.loads(line) for line in log_file.read_text(encoding="utf-8").splitlines()]
    finally:
        configure_logging(level="INFO", json_format=True)
    assert [r["message"] for r in written] == ["harvest done: 12 slots", "vendor medilib unreachable"]
    assert "vendor medilib unreachable" in console and "harvest done" not in console
