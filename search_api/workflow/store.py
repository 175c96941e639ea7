"""Document operations of the workflow, run through the one ``Executor`` (``Executor.call``).

Compare-and-set writes (``if_seq_no`` / ``if_primary_term``) and create-by-id answer ``False`` on a
version conflict instead of raising: conflicts are an expected outcome of concurrent bookings, not an
error. Every other failure is translated by the executor into the platform's error hierarchy.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from elasticsearch import ConflictError, NotFoundError

from search_api.executor import Executor


@dataclass(frozen=True)
class Versioned:
    """A document with the version it was read at."""

    id: str
    source: dict[str, Any]
    seq_no: int
    primary_term: int


class DocStore:
    """Reads and writes documents of the logical indices of one executor."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor

    def get(self, index: str, doc_id: str) -> Versioned | None:
        alias = self.executor.alias(index)

        def operation(es):
            try:
                return es.get(index=alias, id=doc_id).body
            except NotFoundError:
                return None

        found = self.executor.call(operation)
        if not found or not found.get("found"):
            return None
        return Versioned(found["_id"], found["_source"], found["_seq_no"], found["_primary_term"])

    def create(self, index: str, doc_id: str, document: dict[str, Any], *, refresh: bool | str = True) -> bool:
        """Create by id; ``False`` when it exists already."""
        alias = self.executor.alias(index)

        def operation(es):
            try:
                es.create(index=alias, id=doc_id, document=document, refresh=refresh)
                return True
            except ConflictError:
                return False

        return self.executor.call(operation)

    def replace(self, index: str, current: Versioned, document: dict[str, Any], *, refresh: bool | str = True) -> bool:
        """Overwrite ``current`` if nobody changed it since it was read; ``False`` otherwise."""
        alias = self.executor.alias(index)

        def operation(es):
            try:
                es.index(index=alias, id=current.id, document=document, if_seq_no=current.seq_no,
                         if_primary_term=current.primary_term, refresh=refresh)
                return True
            except ConflictError:
                return False

        return self.executor.call(operation)

    def patch(self, index: str, current: Versioned, fields: dict[str, Any], *, refresh: bool | str = True) -> bool:
        """Partial update of ``current`` under compare-and-set; ``False`` on conflict or when it vanished."""
        alias = self.executor.alias(index)

        def operation(es):
            try:
                es.update(index=alias, id=current.id, doc=fields, if_seq_no=current.seq_no,
                          if_primary_term=current.primary_term, refresh=refresh)
                return True
            except (ConflictError, NotFoundError):
                return False

        return self.executor.call(operation)

    def patch_unconditional(self, index: str, doc_id: str, fields: dict[str, Any], *,
                            refresh: bool | str = True) -> bool:
        """Partial update whatever the version; ``False`` when the document does not exist."""
        alias = self.executor.alias(index)

        def operation(es):
            try:
                es.update(index=alias, id=doc_id, doc=fields, refresh=refresh, retry_on_conflict=3)
                return True
            except NotFoundError:
                return False

        return self.executor.call(operation)

    def delete(self, index: str, doc_id: str, *, refresh: bool | str = True) -> bool:
        alias = self.executor.alias(index)

        def operation(es):
            try:
                es.delete(index=alias, id=doc_id, refresh=refresh)
                return True
            except NotFoundError:
                return False

        return self.executor.call(operation)

    def search(self, index: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.executor.search(index=index, body=body)

    def first(self, index: str, body: dict[str, Any]) -> Versioned | None:
        """The first hit of ``body`` (asked with ``seq_no_primary_term``), versioned."""
        hits = self.search(index, {**body, "seq_no_primary_term": True})["hits"]["hits"]
        if not hits:
            return None
        hit = hits[0]
        return Versioned(hit["_id"], hit["_source"], hit["_seq_no"], hit["_primary_term"])

    def scan(self, index: str, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Every hit of a sorted body, page after page with ``search_after``."""
        after = None
        while True:
            page = dict(body)
            if after is not None:
                page["search_after"] = after
            hits = self.search(index, page)["hits"]["hits"]
            yield from hits
            if len(hits) < page.get("size", 10):
                return
            after = hits[-1]["sort"]
