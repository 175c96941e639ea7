"""The real API in a process of its own (``uvicorn --factory search_api.app:create_app``, configured by
``SAS_*`` variables as operators do), for the transport attacks of issue 15: its memory is measured from
``/proc`` and its event loop is not shared with the test's clients."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from bench.common import free_port

ROOT = Path(__file__).resolve().parents[3]


class ApiProcess:
    """``with ApiProcess(settings, SAS_AUTH_FAILURE_LIMIT="10/minute") as api: api.url``."""

    def __init__(self, settings, tmp_path: Path, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp_path / f"api-{self.port}.log"
        self.env = {**os.environ, "SAS_INDEX_PREFIX": settings.index_prefix, "SAS_ES_URL": settings.es_url,
                    "SAS_AUTH_MODE": "dev", "SAS_DEV_SIGNING_KEY": settings.dev_signing_key.get_secret_value(),
                    "SAS_LRM_LISTEN": "false", "SAS_LOG_LEVEL": "WARNING", "SAS_RATE_LIMIT": "100000/second",
                    "SAS_CACHE_DIR": str(tmp_path / "cache"),
                    # One process on its own, not a replica of the session's other apps: its limits are whole.
                    "SAS_RATE_LIMIT_SPLIT_REPLICAS": "false", **env}
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> ApiProcess:
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "search_api.app:create_app", "--host", "127.0.0.1",
             "--port", str(self.port), "--log-level", "warning", "--no-access-log"],
            env=self.env, stdout=self._log, stderr=subprocess.STDOUT, cwd=ROOT)
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the API exited: {self.log_path.read_text()[-3000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the API did not listen in time") from None
                time.sleep(0.1)

    def __exit__(self, *exc_info) -> None:
        assert self.process is not None
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self._log.close()

    def memory_kib(self, field: str = "VmHWM") -> int:
        """``VmHWM`` (peak resident memory) or ``VmRSS`` of the API process, in KiB."""
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise RuntimeError(f"no {field} in /proc/{self.process.pid}/status")


def exchange(port: int, head: str, body_chunks: Iterable[bytes], *, answer_first_s: float = 0.0,
             timeout: float = 30.0) -> tuple[int | None, bytes, int]:
    """One HTTP/1.1 request on a raw socket: ``head``, then ``body_chunks`` sent as fast as the server takes
    them while its answer is read. With ``answer_first_s``, the body is only sent when no answer came
    within that delay (a server refusing on ``Content-Length`` answers before any byte of it).

    Returns ``(status or None, answer bytes, body bytes sent)``. A server that answers and closes early
    makes the sending fail (reset, broken pipe): that is the point, not an error."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sent = 0
    answer = bytearray()
    done = threading.Event()

    def read() -> None:
        try:
            while not _complete(answer):
                data = sock.recv(65536)
                if not data:
                    break
                answer.extend(data)
        except OSError:
            pass
        finally:
            done.set()

    reader = threading.Thread(target=read, daemon=True)
    try:
        sock.sendall(head.encode("latin-1"))
        reader.start()
        if not (answer_first_s and done.wait(answer_first_s)):
            try:
                for chunk in body_chunks:
                    if done.is_set():
                        break
                    sock.sendall(chunk)
                    sent += len(chunk)
            except OSError:
                pass
        done.wait(timeout)
    finally:
        sock.close()
        reader.join(timeout=5)
    raw = bytes(answer)
    status = int(raw.split(b" ", 2)[1]) if raw.startswith(b"HTTP/1.1 ") else None
    return status, raw, sent


def _complete(answer: bytearray) -> bool:
    """Whether ``answer`` holds a whole response (head and a ``Content-Length`` body)."""
    head, found, body = bytes(answer).partition(b"\r\n\r\n")
    if not found:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value.strip())
    return False
