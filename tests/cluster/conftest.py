"""The cluster suite: a real three-node cluster (``sas_core.local_cluster``, the topology of compose.yaml's
``cluster`` profile) started for the session on 9221-9223 / 9321-9323 with a home of its own under /tmp,
the platform laid out on it as ``sas setup --national`` does (primaries and replicas), and stopped and
removed at the end. The shared single node on 9200 is never touched.

The API and the harvester reach the cluster through ``make_client`` given all three node URLs
(``SAS_ES_URLS``): a request that cannot connect to a lost node goes to another one.

Every test carries a ``pytest.mark.timeout``; the suite records what it measured in
``bench/results/cluster.json`` (the README quotes it).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from bench.common import ManagedProcess, free_port, percentile, write_result
from indexer.lifecycle import setup_indices
from indexer.national import apply_replicas, national_overrides
from sas_core.es import make_client
from sas_core.local_cluster import LocalCluster
from sas_core.settings import PROJECT_ROOT
from tests.resilience.conftest import AGEN

RESULTS = PROJECT_ROOT / "bench" / "results" / "cluster.json"


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/cluster" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@dataclass
class Figures:
    """What the suite measured, one section per test, written to ``RESULTS`` at the session's end."""

    sections: dict[str, dict] = field(default_factory=dict)

    def record(self, name: str, **values) -> None:
        self.sections[name] = values
        print(f"\n{name}: {json.dumps(values, indent=1)}", flush=True)


@pytest.fixture(scope="session")
def figures() -> Iterator[Figures]:
    figures = Figures()
    yield figures
    if figures.sections:
        previous = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
        merged = {**previous.get("cases", {}), **figures.sections}
        write_result({"what": "tests/cluster: the platform on a local three-node cluster (512 MB heap per node) "
                              "losing nodes; durations in seconds", "measured_at": time.strftime(
                                  "%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "cases": merged}, RESULTS)


@pytest.fixture(scope="session")
def cluster(settings, test_prefix) -> Iterator[LocalCluster]:
    """Three nodes started for the session (own home under /tmp), green; stopped and removed at the end."""
    home = Path(f"/tmp/sas-es-cluster-{test_prefix}")
    local = LocalCluster(settings.model_copy(update={"es_cluster_home": home, "es_cluster_nodes": 3}))
    assert settings.es_url not in local.urls, "the cluster suite must never use the shared node"
    try:
        local.start(timeout_s=240)
        yield local
    finally:
        local.remove()


@pytest.fixture(scope="session")
def cluster_settings(settings, test_prefix, cluster):
    """The session's settings pointed at every node of the cluster, under a prefix of the suite's own."""
    return settings.model_copy(update={
        "es_url": cluster.urls[0], "es_urls": cluster.urls, "index_prefix": f"{test_prefix}-cl",
        # Bulk writes wait for a lost primary's replica to be promoted: more than the single node's 10 s.
        "es_request_timeout_s": 30.0,
    })


@pytest.fixture(scope="session")
def cluster_es(cluster_settings):
    """The real client on every node (the suite's own checks; the API and harvester build theirs)."""
    client = make_client(cluster_settings, request_timeout=60)
    yield client
    client.close()


@pytest.fixture(scope="session")
def platform(cluster, cluster_es, cluster_settings) -> dict:
    """Every index of the prefix with the national shards and replicas (``sas setup --national``), green."""
    prefix = cluster_settings.index_prefix
    states = setup_indices(cluster_es, prefix=prefix, overrides=national_overrides())
    changes = apply_replicas(cluster_es, prefix=prefix)
    cluster.wait_for_health(status="green", timeout_s=120)
    return {"indices": [s.alias for s in states], "replicas": {c.index: c.replicas_after for c in changes}}


# -- an API process ------------------------------------------------------------------------------------------


@contextmanager
def api_process(settings, *, log: Path) -> Iterator[str]:
    """``sas serve`` (no scheduler) in its own process on ``settings``' cluster and prefix; its base URL.

    Its own process, as deployed: served from a thread of the test process, the API shared one interpreter
    lock with the searching clients, the booking burst and the harvest, and their work became its latency."""
    port = free_port()
    env = {**os.environ, "SAS_ES_URL": settings.es_url, "SAS_ES_URLS": json.dumps(list(settings.es_urls)),
           "SAS_INDEX_PREFIX": settings.index_prefix, "SAS_AUTH_MODE": "dev",
           "SAS_DEV_SIGNING_KEY": settings.dev_signing_key.get_secret_value(),
           "SAS_RATE_LIMIT": settings.rate_limit, "SAS_AUTH_FAILURE_LIMIT": settings.auth_failure_limit,
           "SAS_RATE_LIMIT_SPLIT_REPLICAS": "false", "SAS_ES_REQUEST_TIMEOUT_S": str(settings.es_request_timeout_s),
           "SAS_LOG_LEVEL": "WARNING"}
    process = start_api(port=port, env=env, log=log)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.stop()


def start_api(*, port: int, env: dict, log: Path) -> ManagedProcess:
    """``sas serve --no-scheduler`` on ``port`` with ``env``, once it answers ``/healthz``."""
    process = ManagedProcess([sys.executable, "-m", "sas_cli.main", "serve", "--port", str(port), "--no-scheduler"],
                             env=env, log_path=log)
    return process.wait_http(f"http://127.0.0.1:{port}/healthz", timeout_s=90)


# -- load ------------------------------------------------------------------------------------------------------


@dataclass
class Answer:
    at: float
    latency: float
    status: int          # 0: no HTTP answer at all (connection error, timeout)
    detail: str = ""     # what an error said (its body's start)


class SearchLoad:
    """``clients`` threads searching through the real API, each as fast as it is answered (or ``pause_s`` after
    each answer: a paced load), every answer recorded."""

    def __init__(self, base_url: str, headers: dict, *, clients: int, pause_s: float = 0.0) -> None:
        self.base_url, self.headers, self.clients, self.pause_s = base_url, headers, clients, pause_s
        self.answers: list[Answer] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._loop, daemon=True) for _ in range(clients)]
        self._lock = threading.Lock()

    def _loop(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=30) as client:
            while not self._stop.is_set():
                started = time.monotonic()
                detail = ""
                try:
                    response = client.get("/v1/search", params=AGEN, headers=self.headers)
                    status = response.status_code
                    if status != 200:
                        detail = response.text[:300]
                except httpx.HTTPError as exc:
                    status, detail = 0, repr(exc)[:300]
                with self._lock:
                    self.answers.append(Answer(started, time.monotonic() - started, status, detail))
                if self.pause_s:
                    self._stop.wait(self.pause_s)

    def __enter__(self) -> SearchLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=40)

    def between(self, start: float, end: float) -> list[Answer]:
        """Searches sent at or after ``start`` and answered before ``end``."""
        with self._lock:
            return [a for a in self.answers if start <= a.at and a.at + a.latency < end]

    def in_flight(self, moment: float) -> list[Answer]:
        """Searches sent before ``moment`` and answered after it (in flight when a node was lost)."""
        with self._lock:
            return [a for a in self.answers if a.at < moment <= a.at + a.latency]


def summary(answers: list[Answer]) -> dict:
    """Count, errors (anything but 200) and latency percentiles (ms) of a phase."""
    latencies = [a.latency for a in answers]
    return {
        "searches": len(answers),
        "errors": sum(1 for a in answers if a.status != 200),
        "statuses": {str(s): sum(1 for a in answers if a.status == s) for s in sorted({a.status for a in answers})},
        "p50_ms": round(percentile(latencies, 50) * 1000, 1) if latencies else None,
        "p95_ms": round(percentile(latencies, 95) * 1000, 1) if latencies else None,
        "max_ms": round(max(latencies) * 1000, 1) if latencies else None,
        "error_details": sorted({a.detail for a in answers if a.status != 200})[:5],
    }


class WriteLoad:
    """One writer indexing small documents into ``index`` through the real client; the ids it was told were
    written (acknowledged) and the failures, with times."""

    def __init__(self, es, index: str, *, pause_s: float = 0.02) -> None:
        self.es, self.index, self.pause_s = es, index, pause_s
        self.acknowledged: list[tuple[float, str]] = []
        self.failures: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            doc_id = uuid.uuid4().hex
            try:
                self.es.index(index=self.index, id=doc_id, document={"n": len(self.acknowledged)})
                self.acknowledged.append((time.monotonic(), doc_id))
            except Exception as exc:  # noqa: BLE001 - every failure is counted, none is fatal
                self.failures.append((time.monotonic(), type(exc).__name__))
                time.sleep(0.2)
            time.sleep(self.pause_s)

    def __enter__(self) -> WriteLoad:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join(timeout=90)

    def longest_gap(self, start: float, end: float) -> float:
        """Longest time without an acknowledged write in [start, end]."""
        times = [start] + [at for at, _ in self.acknowledged if start <= at <= end] + [end]
        return max(b - a for a, b in zip(times, times[1:], strict=False))

    def missing(self) -> list[str]:
        """Acknowledged ids the index does not have (after a refresh): must be none."""
        self.es.indices.refresh(index=self.index)
        ids = [doc_id for _, doc_id in self.acknowledged]
        found: set[str] = set()
        for chunk in range(0, len(ids), 1000):
            answer = self.es.mget(index=self.index, ids=ids[chunk:chunk + 1000], source=False)
            found |= {doc["_id"] for doc in answer["docs"] if doc.get("found")}
        return [doc_id for doc_id in ids if doc_id not in found]


def _cpu_seconds(stat_path: str) -> float:
    stat = Path(stat_path).read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def jvm_cpu_seconds(pid: int | None) -> dict[str, float]:
    """CPU seconds a node's JVM has used so far: the whole process's, and its live compiler threads'
    (``C1/C2 CompilerThread``; the JVM ends idle ones, whose time then leaves this sum)."""
    used = {"process": 0.0, "compiler": 0.0}
    if pid is None:
        return used
    try:
        used["process"] = _cpu_seconds(f"/proc/{pid}/stat")
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return used
    for tid in threads:
        try:
            if "CompilerThre" in Path(f"/proc/{pid}/task/{tid}/comm").read_text():
                used["compiler"] += _cpu_seconds(f"/proc/{pid}/task/{tid}/stat")
        except OSError:
            continue          # a thread that ended meanwhile
    return used


class JvmCpu:
    """Each node's JVM CPU (its compiler threads' apart) between marks: the share of a core each used."""

    def __init__(self, cluster: LocalCluster) -> None:
        self.cluster = cluster
        self.marks: dict[str, tuple[float, dict[str, dict[str, float]]]] = {}

    def mark(self, label: str) -> None:
        self.marks[label] = (time.monotonic(), {n.name: jvm_cpu_seconds(self.cluster.pid(n.name))
                                                for n in self.cluster.nodes})

    def between(self, start: str, end: str) -> dict[str, dict[str, int]]:
        """Percent of one core per node, ``{"process": …, "compiler": …}``, from mark ``start`` to ``end`` (no
        node restarted in between; a compiler thread ended meanwhile counts as nothing)."""
        (t0, first), (t1, last) = self.marks[start], self.marks[end]
        seconds = max(t1 - t0, 1e-6)
        return {name: {part: max(0, round(100 * (last[name][part] - first[name][part]) / seconds))
                       for part in ("process", "compiler")} for name in last}


def probe_index(es, cluster: LocalCluster, prefix: str, name: str) -> str:
    """An index of three primaries with one replica each (as the slots of the national layout), green."""
    index = f"{prefix}-probe-{name}"
    es.indices.create(index=index, settings={"number_of_shards": 3, "number_of_replicas": 1},
                      mappings={"properties": {"n": {"type": "long"}}})
    cluster.wait_for_health(status="green", timeout_s=60)
    return index
