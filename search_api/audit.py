"""Audit log of who viewed or exported orientations.

Every read of orientations through the API (one orientation, a page of the list, a CSV export) leaves:

- a structured log record on the ``sas.audit`` logger (shipped with the other JSON logs), and
- a document in the ``audit`` index (``mappings/audit.*``), which administrators read with
  ``GET /v1/admin/audit`` and which survives log rotation.

Recorded: when, what (view / list / export), who (token subject or API key id, name, roles, territories,
structure), which orientations (ids, at most ``MAX_IDS`` per record, plus the count) and the request's
filters. Never patient data: orientations carry none, and nothing of the response body is copied.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

from asgi_correlation_id import correlation_id

from mappings.audit import AuditAction, AuditDoc
from sas_core.clock import utcnow
from search_api.auth import Principal
from search_api.executor import Executor
from search_api.query.admin import audit_records_body

log = logging.getLogger("sas.audit")

#: Orientation ids kept per record (an export of 50 000 rows is recorded with its count and first ids).
MAX_IDS = 200
INDEX = "audit"


class AuditLog:
    """Writes audit records through the executor (the only module talking to Elasticsearch)."""

    def __init__(self, *, executor: Executor) -> None:
        self.executor = executor

    def record(self, *, principal: Principal, action: AuditAction, orientation_ids: Iterable[str],
               count: int | None = None, filters: dict[str, Any] | None = None) -> dict:
        """Write one audit record (log line + document) and return it."""
        ids = [i for i in orientation_ids if i]
        kept = list(dict.fromkeys(ids))[:MAX_IDS]
        document = AuditDoc(
            id=uuid.uuid4().hex, at=utcnow(), action=action, actor=principal.sub,
            actor_name=principal.name, actor_roles=sorted(r.value for r in principal.roles),
            actor_territories=sorted(principal.territories), actor_structure_id=principal.structure_id,
            orientation_ids=kept, orientation_count=len(ids) if count is None else count,
            ids_truncated=len(set(ids)) > len(kept),
            filters=json.dumps(_plain(filters), sort_keys=True, default=str) if filters else None,
            request_id=correlation_id.get(),
        ).model_dump(mode="json")
        log.info("orientations %s by %s", action, principal.sub, extra={"audit": {
            k: document[k] for k in ("id", "action", "actor", "actor_roles", "actor_territories",
                                     "orientation_count", "orientation_ids", "request_id")}})
        # No refresh: the record is durable once acknowledged; readers of the audit wait a second at most.
        self.executor.index_documents(index=INDEX, documents=[document], refresh="false")
        return document

    def exporting(self, *, principal: Principal, documents: Iterable[dict],
                  filters: dict[str, Any] | None = None) -> Iterator[dict]:
        """Pass ``documents`` through, then record the export (also when the client stops reading early:
        what was streamed until then was exported)."""
        ids: list[str] = []
        count = 0
        try:
            for document in documents:
                count += 1
                if len(ids) <= MAX_IDS:
                    ids.append(document.get("id") or "")
                yield document
        finally:
            self.record(principal=principal, action="export", orientation_ids=ids, count=count, filters=filters)

    def search(self, *, actor: str | None = None, action: str | None = None, orientation_id: str | None = None,
               size: int = 50) -> tuple[int, list[dict]]:
        """The newest records matching the filters."""
        body = audit_records_body(actor=actor, action=action, orientation_id=orientation_id, size=size)
        hits = self.executor.search(index=INDEX, body=body)["hits"]
        return int(hits["total"]["value"]), [h["_source"] for h in hits["hits"]]


def _plain(filters: dict[str, Any]) -> dict[str, Any]:
    """Filters as JSON-friendly values, empty ones left out."""
    plain: dict[str, Any] = {}
    for key, value in filters.items():
        if value in (None, (), [], ""):
            continue
        plain[key] = list(value) if isinstance(value, (tuple, set, frozenset)) else value
    return plain
