"""What every benchmark needs: percentiles, free ports, child processes, its own indices, machine facts and
the JSON result file. One copy of each, so that two benchmarks report a figure the same way."""

from __future__ import annotations

import json
import math
import os
import platform
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import httpx

from sas_core.settings import Settings

# --- Statistics ------------------------------------------------------------------------------------------------


def percentile(values: Sequence[float], p: float, *, method: Literal["linear", "nearest"] = "linear") -> float:
    """The ``p``-th percentile (0–100) of ``values``; ``nan`` when there is none.

    ``linear`` interpolates between the closest ranks (numpy's default): latency distributions. ``nearest``
    returns the observed value at the rounded rank: a figure that must be one of the measurements (the
    freshness delay of one taken slot)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (p / 100.0) * (len(ordered) - 1)
    if method == "nearest":
        return float(ordered[min(len(ordered) - 1, max(0, int(round(rank))))])
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (rank - low))


# --- Ports and child processes ---------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port free on the loopback right now (the kernel's pick), for a server started next."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, *, timeout_s: float, exit_code: Callable[[], int | None] | None = None) -> None:
    """Return once ``url`` answers below 500; fail early when the child serving it has exited
    (``exit_code`` returns its exit code, ``None`` while it runs)."""
    deadline = time.monotonic() + timeout_s
    # One client for every poll: each new client builds a TLS context (tens of milliseconds of CPU), which
    # competed with the process being waited for.
    with httpx.Client(timeout=2) as client:
        while time.monotonic() < deadline:
            code = exit_code() if exit_code is not None else None
            if code is not None:
                raise RuntimeError(f"the process serving {url} exited with {code}")
            try:
                if client.get(url).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout_s:.0f}s")


def stop_children_on_sigterm() -> None:
    """Make SIGTERM end a benchmark as Ctrl-C does, through its ``finally`` blocks: its children (simulator,
    API) run in their own sessions, so that a terminal's Ctrl-C reaches the benchmark alone, and Python's
    default SIGTERM would leave them running, holding their ports and the machine's cores."""

    def _exit(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)


class ManagedProcess:
    """A child process started by a benchmark and stopped by it (by its own pid, never by name), its output
    appended to ``log_path``."""

    def __init__(self, command: list[str], *, env: dict[str, str], log_path: Path) -> None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log = open(log_path, "ab")  # closed by stop()
        self.process = subprocess.Popen(command, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                        start_new_session=True)

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_http(self, url: str, *, timeout_s: float) -> ManagedProcess:
        """Wait until the child answers on ``url``; stop it when it does not."""
        try:
            wait_http(url, timeout_s=timeout_s, exit_code=self.process.poll)
        except RuntimeError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 20 s."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.log.close()


# --- The benchmark's own indices -----------------------------------------------------------------------------------


@contextmanager
def bench_indices(settings: Settings, *, prefix: str, keep: bool, request_timeout: float = 300) -> Iterator:
    """A fresh set of indices under ``prefix`` (dropped first), so that a benchmark never touches the platform's
    data; dropped at the end unless ``keep``. Yields the Elasticsearch client."""
    from indexer.lifecycle import drop_prefix, setup_indices
    from sas_core.es import make_client

    # The client production uses (orjson answers): the CPU spent per document is part of the figures.
    es = make_client(settings, request_timeout=request_timeout)
    drop_prefix(es, prefix=prefix)
    setup_indices(es, prefix=prefix)
    try:
        yield es
    finally:
        if not keep:
            drop_prefix(es, prefix=prefix)


# --- Machine facts and the result file ---------------------------------------------------------------------------


def load_average() -> list[float]:
    """The 1/5/15-minute load: other work on the machine competes with what is measured, a result says how much."""
    return [round(value, 2) for value in os.getloadavg()]


def wait_for_merges(es, *, log: Callable[[str], None], quiet_s: float = 30.0, timeout_s: float = 3600.0,
                    poll_s: float = 5.0) -> dict:
    """Wait until no node has merged segments for ``quiet_s`` in a row (at most ``timeout_s``): a dataset just
    harvested keeps Elasticsearch merging for tens of minutes (22 on the 3x one, load average 4), and a
    latency measured meanwhile is the merges', not the search's. Returns how long it waited and whether merges
    had stopped."""
    started = time.monotonic()
    quiet_since: float | None = None
    polls = 0
    while True:
        polls += 1
        nodes = es.nodes.stats(metric="indices", index_metric="merge")["nodes"].values()
        running = sum(int(node["indices"]["merges"]["current"]) for node in nodes)
        now = time.monotonic()
        if running:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = now
        if quiet_since is not None and now - quiet_since >= quiet_s:
            waited = round(now - started, 1)
            if waited > quiet_s:
                log(f"merges stopped after {waited:.0f} s")
            return {"waited_s": waited, "merges_stopped": True}
        if now - started >= timeout_s:
            log(f"merges still running after {timeout_s:.0f} s: measuring anyway")
            return {"waited_s": round(now - started, 1), "merges_stopped": False}
        if running and polls % max(1, round(60 / poll_s)) == 1:
            log(f"  waiting for Elasticsearch's merges ({running} running)…")
        time.sleep(poll_s)


def machine_facts(**extra: object) -> dict:
    """CPUs and Python of the machine measured, plus ``extra`` (load averages, versions)."""
    return {"cpus": os.cpu_count(), "python": platform.python_version(), **extra}


def write_result(result: dict, path: Path, *, also: Path | None = None) -> Path:
    """``result`` as indented JSON (UTF-8 kept readable) into ``path``, and the same text into ``also``."""
    text = json.dumps(result, indent=2, ensure_ascii=False) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    if also is not None:
        also.write_text(text, encoding="utf-8")
    return path
