"""The one place where the API talks to Elasticsearch; maps its failures to typed API errors."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

import orjson
from elastic_transport import ConnectionError as TransportConnectionError
from elastic_transport import ConnectionTimeout
from elasticsearch import ApiError, ConflictError, Elasticsearch, NotFoundError

from mappings.registry import INDICES, alias_name
from sas_core.errors import BackendTimeout, BackendUnavailable, BadRequest, NotFound, SasError
from sas_core.metrics import ES_ERRORS

T = TypeVar("T")
log = logging.getLogger(__name__)


def _refused(reason: Any) -> BadRequest:
    """A query Elasticsearch refused: our query builders validate what callers send, so this is a bound
    we missed; the caller gets a plain message, Elasticsearch's own text (index names, internals) goes
    to the log only (they would tell an attacker about the cluster)."""
    log.warning("query refused by Elasticsearch: %s", str(reason)[:500])
    return BadRequest("query refused by the search backend: check the parameters' ranges (page, size, dates)")


def translate_error(exc: Exception) -> SasError:
    """The platform error that an Elasticsearch transport / API failure means for a caller."""
    if isinstance(exc, ConnectionTimeout):
        return BackendTimeout("Elasticsearch did not answer in time")
    if isinstance(exc, TransportConnectionError):
        return BackendUnavailable("Elasticsearch is unreachable", retry_after_s=5)
    if isinstance(exc, ApiError):
        status = exc.meta.status
        if status in (429, 503):
            return BackendUnavailable(f"Elasticsearch is overloaded: {exc.message}", retry_after_s=2)
        if status == 400:
            return _refused(exc.message)
        if status == 504:
            return BackendTimeout(f"Elasticsearch timed out: {exc.message}")
        return BackendUnavailable(f"Elasticsearch error {status}: {exc.message}")
    return BackendUnavailable(f"Elasticsearch failure: {exc}")


class Executor:
    """Runs requests built elsewhere (pure query builders) against the aliases of one prefix."""

    def __init__(self, *, es: Elasticsearch, prefix: str) -> None:
        self.es = es
        self.prefix = prefix

    def alias(self, name: str) -> str:
        """Alias of logical index ``name`` for this prefix."""
        return alias_name(self.prefix, name)

    def call(self, operation: Callable[[Elasticsearch], T]) -> T:
        """Run ``operation(es)`` and translate transport / API errors into the platform's hierarchy."""
        try:
            return operation(self.es)
        except NotFoundError as exc:
            raise NotFound(f"not found: {exc.message}") from exc
        except (TransportConnectionError, ConnectionTimeout, ApiError) as exc:
            ES_ERRORS.labels(type(exc).__name__).inc()
            raise translate_error(exc) from exc

    def search(self, *, index: str, body: dict[str, Any], **params: Any) -> dict[str, Any]:
        """Search alias ``index`` (logical name) with a prebuilt body."""
        return self.call(lambda es: es.search(index=self.alias(index), body=body, **params).body)

    # --- Search: per-item error mapping, partial results refused (an incomplete list is not neutral) ---

    def _client(self, timeout_s: float | None) -> Elasticsearch:
        """The client with this request timeout, made once (``options()`` builds a whole new client
        object, about a millisecond each time)."""
        if not timeout_s:
            return self.es
        clients = self.__dict__.setdefault("_timeout_clients", {})
        client = clients.get(timeout_s)
        if client is None:
            client = clients[timeout_s] = self.es.options(request_timeout=timeout_s)
        return client

    def search_checked(self, *, index: str, body: dict[str, Any], timeout_s: float | None = None,
                       filter_path: str | None = None) -> dict[str, Any]:
        """Search alias ``index``; a timed-out or partially failed answer is an error, never a
        silently shorter result list. ``filter_path`` trims the answer to what the caller reads."""
        def once() -> dict[str, Any]:
            response = self.call(lambda es: self._client(timeout_s).search(
                index=self.alias(index), body=body, filter_path=filter_path).body)
            check_search_response(response)
            return response

        return _again_if_a_node_was_lost(once)

    def msearch(self, *, searches: list[tuple[str, dict[str, Any]]], timeout_s: float | None = None,
                filter_path: str | None = None) -> list[dict[str, Any]]:
        """Several searches ``(logical index, body)`` in one round-trip; answers in the same order.
        The first failed item raises its mapped error."""
        if not searches:
            return []
        # Encoded here by orjson: the client would encode the lines with the json module (NDJSON bodies
        # do not go through its orjson serializer), which cost more than the rest of the request.
        payload = b"".join(orjson.dumps(line) + b"\n" for index, body in searches
                           for line in ({"index": self.alias(index)}, body))

        def once() -> list[dict[str, Any]]:
            # The client sends bytes as they are (its serializer passes them through); its annotation only
            # names the sequence of mappings it would encode itself.
            response = self.call(lambda es: self._client(timeout_s).msearch(
                searches=payload, filter_path=filter_path).body)  # type: ignore[arg-type]
            answers = response.get("responses", [])
            if len(answers) != len(searches):
                raise BackendUnavailable("Elasticsearch answered a multi-search with the wrong number of responses")
            for answer in answers:
                check_search_response(answer)
            return answers

        return _again_if_a_node_was_lost(once)

    def mget_sources(self, *, index: str, ids: list[str], source: list[str] | None = None,
                     timeout_s: float | None = None) -> dict[str, dict[str, Any]]:
        """``_source`` of each existing document among ``ids`` (missing ones are simply absent)."""
        if not ids:
            return {}
        params: dict[str, Any] = {"index": self.alias(index), "ids": list(dict.fromkeys(ids))}
        if source is not None:
            params["source"] = source
        response = self.call(lambda es: self._client(timeout_s).mget(**params).body)
        found: dict[str, dict[str, Any]] = {}
        for doc in response.get("docs", []):
            if "error" in doc:
                raise search_item_error(doc.get("status", 500), doc["error"])
            if doc.get("found"):
                found[doc["_id"]] = doc.get("_source", {})
        return found

    def index_documents(self, *, index: str, documents: list[dict[str, Any]], refresh: str = "wait_for") -> int:
        """Create or replace ``documents`` (each with its ``id``) in one bulk request; raises on any failure.
        ``refresh="wait_for"``: the caller's next search sees them."""
        if not documents:
            return 0
        operations: list[dict[str, Any]] = []
        for document in documents:
            operations += [{"index": {"_index": self.alias(index), "_id": document["id"]}}, document]
        response = self.call(lambda es: es.bulk(operations=operations, refresh=refresh).body)
        if response.get("errors"):
            failed = [item for item in response["items"] if next(iter(item.values())).get("error")]
            first_error = next(iter(failed[0].values()))["error"]
            raise BackendUnavailable(f"{len(failed)} document(s) not written: {first_error}")
        return len(documents)

    def delete_document(self, *, index: str, doc_id: str, refresh: str = "wait_for") -> None:
        """Delete one document by id (``NotFound`` when it does not exist)."""
        self.call(lambda es: es.delete(index=self.alias(index), id=doc_id, refresh=refresh))

    # --- Documents by id: version conflicts and missing documents are answers, not errors -------------------
    # Compare-and-set writes (``if_seq_no`` / ``if_primary_term``) and create-by-id answer ``False`` on a
    # version conflict: conflicts are an expected outcome of concurrent bookings. ``refresh=None`` leaves
    # Elasticsearch's default (no refresh).

    def get_document(self, *, index: str, doc_id: str) -> dict[str, Any] | None:
        """The whole answer of a get by id (``_source``, ``_seq_no``, ``_primary_term``), ``None`` when missing."""

        def operation(es: Elasticsearch) -> dict[str, Any] | None:
            try:
                found = es.get(index=self.alias(index), id=doc_id).body
            except NotFoundError:
                return None
            return found if found.get("found") else None

        return self.call(operation)

    def create_document(self, *, index: str, doc_id: str, document: dict[str, Any],
                        refresh: bool | str | None = None) -> bool:
        """Create by id; ``False`` when it exists already."""

        def operation(es: Elasticsearch) -> bool:
            try:
                es.create(index=self.alias(index), id=doc_id, document=document, refresh=refresh)
            except ConflictError:
                return False
            return True

        return self.call(operation)

    def replace_document(self, *, index: str, doc_id: str, document: dict[str, Any], seq_no: int,
                         primary_term: int, refresh: bool | str | None = None) -> bool:
        """Overwrite the document if it is still at ``seq_no`` / ``primary_term``; ``False`` otherwise."""

        def operation(es: Elasticsearch) -> bool:
            try:
                es.index(index=self.alias(index), id=doc_id, document=document, if_seq_no=seq_no,
                         if_primary_term=primary_term, refresh=refresh)
            except ConflictError:
                return False
            return True

        return self.call(operation)

    def update_document(self, *, index: str, doc_id: str, fields: dict[str, Any], seq_no: int | None = None,
                        primary_term: int | None = None, refresh: bool | str | None = None,
                        retry_on_conflict: int | None = None) -> bool:
        """Partial update; ``False`` when the document does not exist or, under compare-and-set (``seq_no``
        given), when it changed since it was read. Without ``seq_no`` a conflict left after
        ``retry_on_conflict`` retries is an error."""

        def operation(es: Elasticsearch) -> bool:
            try:
                es.update(index=self.alias(index), id=doc_id, doc=fields, if_seq_no=seq_no,
                          if_primary_term=primary_term, refresh=refresh, retry_on_conflict=retry_on_conflict)
            except NotFoundError:
                return False
            except ConflictError:
                if seq_no is None:
                    raise
                return False
            return True

        return self.call(operation)

    def delete_if_exists(self, *, index: str, doc_id: str, refresh: bool | str | None = None) -> bool:
        """Delete one document by id; ``False`` when it did not exist."""

        def operation(es: Elasticsearch) -> bool:
            try:
                es.delete(index=self.alias(index), id=doc_id, refresh=refresh)
            except NotFoundError:
                return False
            return True

        return self.call(operation)

    def bulk(self, *, operations: list[dict[str, Any]], refresh: bool | str | None = None) -> dict[str, Any]:
        """One bulk request of prebuilt ``operations``; its answer, per-item errors left to the caller."""
        return self.call(lambda es: es.bulk(operations=operations, refresh=refresh).body)

    def refresh(self, *, index: str) -> None:
        """Make every write to alias ``index`` visible to searches now."""
        self.call(lambda es: es.indices.refresh(index=self.alias(index)))

    def readiness(self) -> dict[str, Any]:
        """Cluster reachable and every alias present: what ``/readyz`` reports."""
        health = self.call(lambda es: es.cluster.health(timeout="2s").body)
        aliases = [s.alias(self.prefix) for s in INDICES]
        present = self.call(
            lambda es: {a for a in aliases if es.indices.exists_alias(name=a).body}
        )
        return {
            "cluster_status": health.get("status"),
            "missing_aliases": [a for a in aliases if a not in present],
        }


def search_item_error(status: int, error: Any) -> SasError:
    """The platform error for one failed item of a multi-search / multi-get."""
    reason = error.get("reason") if isinstance(error, dict) else str(error)
    if isinstance(error, dict) and error.get("root_cause"):
        reason = error["root_cause"][0].get("reason") or reason
    if status in (429, 503):
        return BackendUnavailable(f"Elasticsearch is overloaded: {reason}", retry_after_s=2)
    if status == 400:
        return _refused(reason)
    if status == 504:
        return BackendTimeout(f"Elasticsearch timed out: {reason}")
    return BackendUnavailable(f"Elasticsearch error {status}: {reason}")


class ShardsOnLostNode(BackendUnavailable):
    """Shards of a search failed because the node holding them left the cluster (killed, restarting): their
    other copy answers a new attempt."""


#: Shard failures that mean "that copy's node is gone", not "this search is wrong" or "overloaded".
_LOST_NODE_FAILURES = frozenset({
    "node_disconnected_exception", "node_not_connected_exception", "node_closed_exception",
    "connect_transport_exception", "send_request_transport_exception", "no_shard_available_action_exception",
})


def _again_if_a_node_was_lost(attempt: Callable[[], T]) -> T:
    """``attempt()``, once more when its answer missed shards on a node that left: a search in flight when a
    data node dies otherwise fails although every shard has a live replica (seen in tests/cluster: 4 of 16
    searches in flight answered 503). Searches are reads: a second attempt is safe."""
    try:
        return attempt()
    except ShardsOnLostNode:
        return attempt()


def shard_failure_kinds(failures: list[dict[str, Any]]) -> set[str]:
    """The ``type`` of each shard failure, and of its cause (a transport error wraps the node's loss)."""
    kinds = set()
    for failure in failures:
        reason = failure.get("reason") or {}
        while isinstance(reason, dict) and reason:
            if reason.get("type"):
                kinds.add(str(reason["type"]))
            reason = reason.get("caused_by") or {}
    return kinds


def check_search_response(response: dict[str, Any]) -> None:
    """Raise when a search answer is an error, timed out, or misses shards (its hits would be incomplete)."""
    if "error" in response:
        raise search_item_error(int(response.get("status", 500)), response["error"])
    if response.get("timed_out"):
        raise BackendTimeout("Elasticsearch search timed out (partial results refused)")
    shards = response.get("_shards") or {}
    if shards.get("failed"):
        failures = shards.get("failures") or []
        reason = failures[0].get("reason", {}).get("reason") if failures else "unknown"
        status = int(failures[0].get("status", 503)) if failures else 503
        if status == 400:
            raise _refused(reason)
        message = f"{shards['failed']} of {shards.get('total')} shards failed: {reason}"
        if shard_failure_kinds(failures) & _LOST_NODE_FAILURES:
            raise ShardsOnLostNode(message, retry_after_s=2)
        raise BackendUnavailable(message, retry_after_s=2)
