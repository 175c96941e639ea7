"""The load generator: closed-loop HTTP clients (threads, one keep-alive connection each) and what each
sends, a search to the API or the captured requests to Elasticsearch."""

from __future__ import annotations

import http.client
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bench.search.capture import Capture
from bench.search.mix import BenchQuery


@dataclass
class LoadResult:
    latencies_s: list[float]
    errors: Counter
    wall_s: float


def run_load(*, clients: int, jobs: int, host: str, port: int, send: Callable[[http.client.HTTPConnection, int], bool],
             think_ms: float = 0.0, seed: int = 1) -> LoadResult:
    """``clients`` threads share ``jobs`` job numbers; each sends the next one as soon as its previous
    answer is read (plus an optional exponential think time), over its own keep-alive connection."""
    lock = threading.Lock()
    counter = iter(range(jobs))
    latencies: list[float] = []
    errors: Counter = Counter()

    def worker(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        conn = http.client.HTTPConnection(host, port, timeout=60)
        while True:
            with lock:
                job = next(counter, None)
            if job is None:
                break
            started = time.perf_counter()
            try:
                ok = send(conn, job)
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=60)
                with lock:
                    errors[type(exc).__name__] += 1
                continue
            elapsed = time.perf_counter() - started
            with lock:
                if ok:
                    latencies.append(elapsed)
                else:
                    errors["http_status"] += 1
            if think_ms > 0:
                time.sleep(rng.expovariate(1000.0 / think_ms))
        conn.close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return LoadResult(latencies, errors, time.perf_counter() - started)


def api_sender(mix: Sequence[BenchQuery], tokens: Sequence[str], *, status_log: Counter | None = None):
    """Send query ``job % len(mix)`` to the API with client token ``job % len(tokens)``."""
    paths = [q.path() for q in mix]

    def send(conn: http.client.HTTPConnection, job: int) -> bool:
        conn.request("GET", paths[job % len(paths)],
                     headers={"Authorization": f"Bearer {tokens[job % len(tokens)]}", "Accept": "application/json"})
        response = conn.getresponse()
        response.read()
        if status_log is not None and response.status != 200:
            status_log[response.status] += 1
        return response.status == 200

    return send


def raw_sender(capture: Capture):
    """Replay, in order, the Elasticsearch requests the API made for query ``job``."""
    usable = [reqs for reqs in capture.requests if reqs]

    def send(conn: http.client.HTTPConnection, job: int) -> bool:
        ok = True
        for req in usable[job % len(usable)]:
            headers = {"Content-Type": req.content_type} if req.content_type else {}
            conn.request(req.method, req.path, body=req.body, headers=headers)
            response = conn.getresponse()
            response.read()
            ok = ok and response.status == 200
        return ok

    return send
