"""A loopback TCP proxy that holds every client→server chunk before forwarding it: a slow Elasticsearch node,
so that whatever waits for it where it should not (the API's event loop, the probes) shows in the latency of
everything else. Used by the probes-under-load and the failed-authentication tests."""

from __future__ import annotations

import socket
import threading
import time
from typing import Self


class SlowProxy:
    """A TCP proxy to ``upstream`` that holds every client→server chunk ``delay_s`` before forwarding it."""

    def __init__(self, upstream: tuple[str, int], *, delay_s: float) -> None:
        self.upstream, self.delay_s = upstream, delay_s
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=512)
        self.port = self.listener.getsockname()[1]
        self.closed = threading.Event()
        self.sockets: list[socket.socket] = []

    def __enter__(self) -> Self:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.closed.set()
        self.listener.close()
        for sock in list(self.sockets):
            try:
                sock.close()
            except OSError:
                pass

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            self.sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, self.delay_s), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, 0.0), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket, delay_s: float) -> None:
        try:
            while chunk := source.recv(65536):
                if delay_s:
                    time.sleep(delay_s)
                target.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
