"""A lighter HTTP node for the Elasticsearch client: the standard library's ``http.client`` over pooled
keep-alive connections, instead of the client's default urllib3 node.

Measured on one small multi-search (``sas bench api-cpu`` context): the urllib3 node spends about 170 µs
of CPU per request more than ``http.client`` alone (its pool, retry and timeout objects, header
dictionaries, response wrapper); the API sends two or three requests per search on a machine where
Elasticsearch needs the same cores. Everything above the node (``Transport``: retries, node pool,
serializers, error classes) is the client's own, unchanged.

Only plain http without compression takes it (``supports``): https (certificate checks, CA bundles) keeps
the urllib3 node, whose TLS handling is the client's tested one."""

from __future__ import annotations

import http.client
import logging
import socket
import threading
import time

from elastic_transport import ApiResponseMeta, ConnectionError, ConnectionTimeout, HttpHeaders, NodeConfig
from elastic_transport._node._base import BUILTIN_EXCEPTIONS, RERAISE_EXCEPTIONS, BaseNode, NodeApiResponse
from elastic_transport.client_utils import DEFAULT, DefaultType

#: A reused keep-alive connection that fails this way before any answer was read was closed by the
#: server while idle: the request is sent again once on a new connection (nothing was processed).
_STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError, http.client.CannotSendRequest)


#: The client's per-request debug logger. Its nodes build the whole debug dump (request and answer
#: bodies decoded to text, headers sorted) whenever any handler exists anywhere above it, i.e. always in
#: the API, whose root logger writes JSON lines, and only then drop it below DEBUG: built here only when
#: DEBUG is on for it (the same records reach the same handlers).
_request_log = logging.getLogger("elastic_transport.node")


class StdlibHttpNode(BaseNode):
    """``http.client`` connections to one node, kept alive in a LIFO pool (thread-safe)."""

    _CLIENT_META_HTTP_CLIENT = ("hc", "stdlib")

    @staticmethod
    def supports(config: NodeConfig) -> bool:
        return config.scheme == "http" and not config.http_compress

    def __init__(self, config: NodeConfig) -> None:
        super().__init__(config)
        if not self.supports(config):
            raise ValueError("StdlibHttpNode: plain http without compression only (else the urllib3 node)")
        self._timeout = config.request_timeout
        self._idle: list[http.client.HTTPConnection] = []
        self._max_idle = max(1, config.connections_per_node)
        self._lock = threading.Lock()

    def _new_connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=self._timeout)

    def _take(self) -> tuple[http.client.HTTPConnection, bool]:
        """A pooled connection (``True``: reused) or a new one."""
        with self._lock:
            if self._idle:
                return self._idle.pop(), True
        return self._new_connection(), False

    def _give_back(self, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < self._max_idle:
                self._idle.append(connection)
                return
        connection.close()

    def _exchange(self, connection: http.client.HTTPConnection, method: str, target: str, body: bytes | None,
                  headers: dict[str, str], timeout: float | None) -> tuple[http.client.HTTPResponse, bytes]:
        if connection.sock is None:
            connection.timeout = timeout
            connection.connect()   # with TCP_NODELAY, as urllib3's
        else:
            connection.sock.settimeout(timeout)
        connection.request(method, target, body=body, headers=headers)
        response = connection.getresponse()
        return response, response.read()

    def perform_request(self, method: str, target: str, body: bytes | None = None,
                        headers: HttpHeaders | None = None,
                        request_timeout: DefaultType | float | None = DEFAULT) -> NodeApiResponse:
        if self.path_prefix:
            target = f"{self.path_prefix}{target}"
        timeout = self._timeout if request_timeout is DEFAULT else request_timeout
        request_headers = self._headers.copy()
        if headers:
            request_headers.update(headers)
        started = time.time()
        try:
            response, data = self._send(method, target, body or None, dict(request_headers.items()), timeout)
        except RERAISE_EXCEPTIONS:
            raise
        except Exception as exc:
            error = self._transport_error(exc)
            if error is None:
                raise
            if _request_log.isEnabledFor(logging.DEBUG):
                self._log_request(method=method, target=target, headers=request_headers, body=body,
                                  exception=error)
            raise error from exc
        meta = ApiResponseMeta(node=self.config, duration=time.time() - started, http_version="1.1",
                               status=response.status, headers=HttpHeaders(response.getheaders()))
        if _request_log.isEnabledFor(logging.DEBUG):
            self._log_request(method=method, target=target, headers=request_headers, body=body, meta=meta,
                              response=data)
        return NodeApiResponse(meta, data)

    def _send(self, method: str, target: str, body: bytes | None, headers: dict[str, str],
              timeout: float | None) -> tuple[http.client.HTTPResponse, bytes]:
        """The answer and its body, over a pooled connection (given back unless the server closes it);
        a failed connection is closed, never pooled."""
        connection, reused = self._take()
        try:
            try:
                response, data = self._exchange(connection, method, target, body, headers, timeout)
            except _STALE:
                connection.close()
                if not reused:
                    raise
                connection = self._new_connection()
                response, data = self._exchange(connection, method, target, body, headers, timeout)
        except BaseException:
            connection.close()
            raise
        if response.will_close:
            connection.close()
        else:
            self._give_back(connection)
        return response, data

    @staticmethod
    def _transport_error(exc: Exception) -> Exception | None:
        """The client's error class for ``exc`` (as its urllib3 node maps them); ``None``: raise as is."""
        if isinstance(exc, (socket.timeout, TimeoutError)):
            return ConnectionTimeout("Connection timed out during request", errors=(exc,))
        if isinstance(exc, (OSError, http.client.HTTPException)):
            return ConnectionError(str(exc), errors=(exc,))
        if isinstance(exc, BUILTIN_EXCEPTIONS):
            return None
        return ConnectionError(str(exc), errors=(exc,))

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

