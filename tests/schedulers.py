"""Real ``sas scheduler`` processes for the tests that split vendors between hosts or kill one.

Each process is the CLI's own entry point in a child interpreter (``python -m sas_cli.main scheduler``),
on the test session's index prefix, with short leases so that a takeover is measured in seconds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import yaml

from indexer.leader import LeaderElection
from indexer.vendor_shares import owner_lock_name
from mappings.registry import alias_name

ROOT = Path(__file__).resolve().parents[1]


def write_vendors_file(path: Path, *, simulator_port: int, names: list[str], every_s: float = 2.0) -> Path:
    """A vendors file of ``names`` on the simulator, one tier every ``every_s`` (quick runs) over the next
    72 h: the next 4 h of an evening, a night or a Sunday hold no free slot at all, and the tests wait for
    harvested slots whatever the hour they run at."""
    base = f"http://127.0.0.1:{simulator_port}"
    path.write_text(yaml.safe_dump({
        "defaults": {"timeout_s": 5, "max_attempts": 1, "rate_limit_per_s": 200, "backoff_initial_s": 0.01,
                     "tiers": [{"name": "quick", "start_h": 0, "end_h": 72, "every_min": every_s / 60}]},
        "vendors": [{"name": name, "base_url": f"{base}/{name}/fhir", "use_cases": ["ps"]} for name in names]}))
    return path


@dataclass
class SchedulerProcess:
    process: subprocess.Popen
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill9(self) -> float:
        """``kill -9``; the monotonic time of the kill (after the process is gone)."""
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        return time.monotonic()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def scheduler_env(*, es_url: str, prefix: str, vendors_file: Path, ttl_s: int, extra: dict | None = None) -> dict:
    return {**os.environ, "SAS_ES_URL": es_url, "SAS_INDEX_PREFIX": prefix, "SAS_VENDORS_FILE": str(vendors_file),
            "SAS_LEADER_LOCK_TTL_S": str(ttl_s), "SAS_HARVEST_RUN_LOCK_TTL_S": str(ttl_s),
            "SAS_HARVEST_FIRST_FULL_DELAY_S": "1", "SAS_LOG_LEVEL": "INFO", **(extra or {})}


def start_scheduler(*, env: dict, log: Path) -> SchedulerProcess:
    with log.open("ab") as out:
        process = subprocess.Popen([sys.executable, "-m", "sas_cli.main", "scheduler"], env=env, cwd=ROOT,
                                   stdout=out, stderr=subprocess.STDOUT)
    return SchedulerProcess(process=process, log=log)


def pid_of(holder: str | None) -> int | None:
    """The process id in a lease holder ``host:pid:random``."""
    if not holder:
        return None
    parts = holder.split(":")
    return int(parts[1]) if len(parts) >= 3 and parts[1].isdigit() else None


def _live_holder(es, prefix: str, name: str) -> str | None:
    found = es.options(ignore_status=404).get(index=alias_name(prefix, "locks"), id=name)
    if not found.get("found"):
        return None
    source = found["_source"]
    if datetime.fromisoformat(source["expires_at"]) <= datetime.now(timezone.utc):
        return None
    return source["holder"]


def vendor_owners(es, prefix: str, vendors: list[str]) -> dict[str, int | None]:
    """Vendor → pid of the process whose ownership lease is live now (``None``: nobody)."""
    return {vendor: pid_of(_live_holder(es, prefix, owner_lock_name(vendor))) for vendor in vendors}


def leader_pid(es, prefix: str) -> int | None:
    return pid_of(_live_holder(es, prefix, LeaderElection.LOCK_NAME))


def wait_for(condition, timeout_s: float, every_s: float = 0.1):
    """The first truthy value of ``condition()`` within ``timeout_s`` (``None`` otherwise)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every_s)
    return None


class WriteLatency:
    """A lease renewed every ``every_s`` from a thread of the test, each renewal timed: what one lease
    write costs on the machine right now (a takeover is three such calls)."""

    def __init__(self, es, *, prefix: str, every_s: float = 0.5) -> None:
        import threading

        from indexer.leader import LeaseLock

        self.lock = LeaseLock(es, prefix=prefix, name="test-write-latency", ttl_s=60, holder="latency-probe")
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._every_s = every_s
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(self._every_s):
            started = time.monotonic()
            if self.lock.held:
                self.lock.renew()
            else:
                self.lock.acquire()
            self.samples.append(time.monotonic() - started)

    def start(self) -> WriteLatency:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self.lock.release()

    def worst_s(self) -> float:
        return max(self.samples, default=0.0)
