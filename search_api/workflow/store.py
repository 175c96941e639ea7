"""Document operations of the workflow, run through the one ``Executor`` (its document methods).

Compare-and-set writes (``if_seq_no`` / ``if_primary_term``) and create-by-id answer ``False`` on a
version conflict instead of raising: conflicts are an expected outcome of concurrent bookings, not an
error. Every other failure is translated by the executor into the platform's error hierarchy.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

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
        found = self.executor.get_document(index=index, doc_id=doc_id)
        if found is None:
            return None
        return Versioned(found["_id"], found["_source"], found["_seq_no"], found["_primary_term"])

    def create(self, index: str, doc_id: str, document: dict[str, Any], *, refresh: bool | str = True) -> bool:
        """Create by id; ``False`` when it exists already."""
        return self.executor.create_document(index=index, doc_id=doc_id, document=document, refresh=refresh)

    def replace(self, index: str, current: Versioned, document: dict[str, Any], *, refresh: bool | str = True) -> bool:
        """Overwrite ``current`` if nobody changed it since it was read; ``False`` otherwise."""
        return self.executor.replace_document(index=index, doc_id=current.id, document=document,
                                              seq_no=current.seq_no, primary_term=current.primary_term,
                                              refresh=refresh)

    def patch(self, index: str, current: Versioned, fields: dict[str, Any], *, refresh: bool | str = True) -> bool:
        """Partial update of ``current`` under compare-and-set; ``False`` on conflict or when it vanished."""
        return self.executor.update_document(index=index, doc_id=current.id, fields=fields, seq_no=current.seq_no,
                                             primary_term=current.primary_term, refresh=refresh)

    def patch_unconditional(self, index: str, doc_id: str, fields: dict[str, Any], *,
                            refresh: bool | str = True) -> bool:
        """Partial update whatever the version; ``False`` when the document does not exist."""
        return self.executor.update_document(index=index, doc_id=doc_id, fields=fields, refresh=refresh,
                                             retry_on_conflict=3)

    def delete(self, index: str, doc_id: str, *, refresh: bool | str = True) -> bool:
        return self.executor.delete_if_exists(index=index, doc_id=doc_id, refresh=refresh)

    def refresh(self, index: str) -> None:
        """Make the writes to ``index`` made without refresh visible to searches now."""
        self.executor.refresh(index=index)

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
