"""The one place where the API talks to Elasticsearch; maps its failures to typed API errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from elastic_transport import ConnectionError as TransportConnectionError
from elastic_transport import ConnectionTimeout
from elasticsearch import ApiError, Elasticsearch, NotFoundError

from mappings.registry import INDICES, alias_name
from sas_core.metrics import ES_ERRORS
from sas_core.errors import BackendTimeout, BackendUnavailable, BadRequest, NotFound, SasError

T = TypeVar("T")


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
            return BadRequest(f"query refused by Elasticsearch: {exc.message}")
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
        except (TransportConnectionError, ApiError) as exc:
            ES_ERRORS.labels(type(exc).__name__).inc()
            raise translate_error(exc) from exc

    def search(self, *, index: str, body: dict[str, Any], **params: Any) -> dict[str, Any]:
        """Search alias ``index`` (logical name) with a prebuilt body."""
        return self.call(lambda es: es.search(index=self.alias(index), body=body, **params).body)

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
