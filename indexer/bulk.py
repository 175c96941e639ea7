"""The one bulk writer of the indexer: every index it fills (slots, offers, addresses, migrations) is
written through ``BulkWriter``.

Built around the harvester's hot path: documents arrive already serialised (the harvester splices slot
documents from bytes, the directory and address loads dump theirs with ``orjson``), so the writer only
joins NDJSON lines into request bodies — no per-action dict, no re-serialisation — and sends them from
background threads, so that writing overlaps reading, mapping and geocoding. Every item of every answer
is accounted for: ``results`` (``<op>:<result>``: ``index:created``, ``update:noop``, ``delete:deleted``…)
and ``errors`` (counts by reason, with the first messages kept verbatim).

What differs between the callers is policy, given at construction:

- ``request_failure``: ``"count"`` (the harvester: a failed request is counted as
  ``bulk_request_failed`` for each of its operations and the run goes on, ``partial``) or ``"raise"``
  (loads and migrations: the exception reaches the caller at the next write or at ``close``, and the
  load fails);
- ``create_conflict``: what a ``create`` answered 409 means — ``"update"`` (the slot exists outside the
  window the harvester scanned: re-sent as a partial update of the same source), ``"ignore"`` (a
  vendor-only place an earlier run created: fine) or ``"fail"``;
- ``missing_delete_ok``: whether a ``delete`` answered 404 is a success (the harvester: already gone) or
  a failure (the directory load: the offer it read a moment ago vanished);
- ``failure_reason``: how a failed item's reason is named in ``errors``;
- ``kind_of_id``: an optional tally of successful items by a kind read from their id (the address load
  tells streets from numbers by their ``voie-`` ids).
"""

from __future__ import annotations

import sys
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Literal

import orjson
from elastic_transport import TransportError
from elasticsearch import ApiError, Elasticsearch

from sas_core.counts import ReasonCounts

#: Errors kept verbatim (the rest are only counted).
MAX_MESSAGES = 20
_FILTER_PATH = "errors,items.*.result,items.*.status,items.*._id,items.*.error.type,items.*.error.reason"

FailureReason = Callable[[str, int, "str | None"], str]


def reason_by_operation(op: str, status: int, error_type: str | None) -> str:
    """``<op>_<error type>`` (``update_version_conflict_engine_exception``), the status without a type."""
    return f"{op}_{error_type or status}"


def reason_as_index_error(op: str, status: int, error_type: str | None) -> str:
    """``index_error:<error type>``: the loads' rejection reason for a document Elasticsearch refused."""
    return f"index_error:{error_type or 'error'}"


class BulkWriter:
    """Buffers NDJSON operations into requests of ``chunk`` operations (or ``max_chunk_bytes``) and
    sends them on ``threads`` background threads, at most two requests per thread queued or running."""

    def __init__(self, es: Elasticsearch, *, index: str, chunk: int, threads: int = 1,
                 max_chunk_bytes: int | None = None, request_failure: Literal["count", "raise"] = "count",
                 create_conflict: Literal["update", "ignore", "fail"] = "update", missing_delete_ok: bool = True,
                 failure_reason: FailureReason = reason_by_operation,
                 kind_of_id: Callable[[str], str] | None = None) -> None:
        self.es = es
        self.index = index
        self.chunk = max(chunk, 1)
        self.max_chunk_bytes = max_chunk_bytes or sys.maxsize
        self.request_failure = request_failure
        self.create_conflict = create_conflict
        self.missing_delete_ok = missing_delete_ok
        self.failure_reason = failure_reason
        self.kind_of_id = kind_of_id
        self._index_part = b'":{"_index":' + orjson.dumps(index) + b',"_id":'
        self._pool = ThreadPoolExecutor(max_workers=max(threads, 1), thread_name_prefix="bulk")
        self._in_flight = threading.BoundedSemaphore(max(threads, 1) * 2)
        self._lines: list[bytes] = []
        self._docs: dict[str, bytes] = {}      # create id → source line of the current chunk (conflict retry)
        self._keep_sources = create_conflict == "update"
        self._ops = 0
        self._bytes = 0
        #: Operations sent so far (creates, updates, deletes).
        self.written = 0
        self._futures: list[Future] = []
        self._lock = threading.Lock()
        self.results: Counter = Counter()
        self.kinds: Counter = Counter()
        self.errors = ReasonCounts()
        self.error_messages: list[str] = []

    # -- operations ----------------------------------------------------------------------------------

    def _action(self, op: str, doc_id: str) -> bytes:
        return b'{"' + op.encode() + self._index_part + orjson.dumps(doc_id) + b'}}'

    def create(self, doc_id: str, document: dict) -> None:
        self.create_raw(doc_id, orjson.dumps(document))

    def create_raw(self, doc_id: str, source: bytes) -> None:
        """``create`` of an already serialised document."""
        action = self._action("create", doc_id)
        self._lines += (action, source)
        if self._keep_sources:
            self._docs[doc_id] = source
        self._count(len(action) + len(source))

    def index_raw(self, doc_id: str, source: bytes) -> None:
        """``index`` (create or overwrite) of an already serialised document."""
        action = self._action("index", doc_id)
        self._lines += (action, source)
        self._count(len(action) + len(source))

    def update(self, doc_id: str, partial: dict) -> None:
        self.update_raw(doc_id, orjson.dumps({"doc": partial}))

    def update_raw(self, doc_id: str, body: bytes) -> None:
        """``update`` with an already serialised body (``{"doc": …}``, with ``doc_as_upsert`` or not)."""
        action = self._action("update", doc_id)
        self._lines += (action, body)
        self._count(len(action) + len(body))

    def delete(self, doc_id: str) -> None:
        action = self._action("delete", doc_id)
        self._lines.append(action)
        self._count(len(action))

    def _count(self, size: int) -> None:
        self._ops += 1
        self._bytes += size
        if self._ops >= self.chunk or self._bytes >= self.max_chunk_bytes:
            self.flush()

    # -- sending -------------------------------------------------------------------------------------

    def flush(self) -> None:
        self._raise_failed_request()
        if not self._lines:
            return
        body = b"\n".join(self._lines) + b"\n"
        self.written += self._ops
        docs = self._docs
        self._lines, self._docs, self._ops, self._bytes = [], {}, 0, 0
        self._in_flight.acquire()  # back-pressure: at most 2 requests per thread queued or running
        future = self._pool.submit(self._send, body, docs)
        future.add_done_callback(lambda _: self._in_flight.release())
        self._futures.append(future)

    def _raise_failed_request(self) -> None:
        """Drop finished requests; re-raise the first one that failed (``raise`` mode)."""
        for future in self._futures:
            if future.done() and future.exception() is not None:
                raise future.exception()  # type: ignore[misc]
        self._futures = [future for future in self._futures if not future.done()]

    def close(self) -> None:
        """Send what is buffered and wait for every request (``raise`` mode: raise the first failure)."""
        try:
            self.flush()
            for future in self._futures:
                future.result()
            self._futures.clear()
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> BulkWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            # The caller's own failure is the one to report; pending requests are cancelled or awaited.
            self._pool.shutdown(wait=True, cancel_futures=True)

    def _send(self, body: bytes, docs: dict[str, bytes]) -> None:
        try:
            # Pre-serialised NDJSON bytes: the client sends them as they are (its stub only names a
            # sequence of mappings), which is what keeps the encoding out of the bulk request's path.
            response = self.es.bulk(operations=body, filter_path=_FILTER_PATH)  # type: ignore[arg-type]
        except (ApiError, TransportError) as exc:
            if self.request_failure == "raise":
                raise
            with self._lock:
                self._record_error("bulk_request_failed", f"bulk request failed: {exc}", count=body.count(b"\n") // 2)
            return
        conflicts = self._account(response.get("items", []))
        if conflicts:
            lines: list[bytes] = []
            for doc_id in conflicts:
                lines += (self._action("update", doc_id), b'{"doc":' + docs[doc_id] + b'}')
            self._send(b"\n".join(lines) + b"\n", {})

    def _account(self, items: list[dict]) -> list[str]:
        """Count every item of an answer; the ids of ``create`` conflicts to re-send as updates."""
        conflicts: list[str] = []
        kind_of_id = self.kind_of_id
        with self._lock:
            for item in items:
                (op, result), = item.items()
                status = result.get("status", 0)
                if status < 300 or (op == "delete" and status == 404 and self.missing_delete_ok):
                    self.results[f"{op}:{result.get('result', 'ok')}"] += 1
                    if kind_of_id is not None:
                        self.kinds[kind_of_id(str(result.get("_id", "")))] += 1
                elif op == "create" and status == 409 and self.create_conflict != "fail":
                    if self.create_conflict == "update":
                        conflicts.append(result["_id"])
                    else:
                        self.results["create:exists"] += 1
                else:
                    error = result.get("error") or {}
                    error_type = error.get("type") if isinstance(error, dict) else str(error)
                    reason = error.get("reason") if isinstance(error, dict) else None
                    self._record_error(self.failure_reason(op, status, error_type),
                                       f"{op} {result.get('_id')}: {error_type}: {str(reason)[:200]}")
        return conflicts

    def _record_error(self, reason: str, message: str, *, count: int = 1) -> None:
        self.errors[reason] += count
        if len(self.error_messages) < MAX_MESSAGES:
            self.error_messages.append(message)

    def result_count(self, *results: str) -> int:
        """Items answered with any of ``results`` (``"created"``, ``"deleted"``…), whatever the operation."""
        wanted = set(results)
        return sum(count for key, count in self.results.items() if key.split(":", 1)[1] in wanted)
