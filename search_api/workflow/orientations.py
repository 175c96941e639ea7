"""Orientations: recording them, changing their status (with history), listing and exporting.

Every creation and status change is published to the regulation software of the orienting SAS
(INT_L02) after it is stored. Status changes are compare-and-set on the document, so that a vendor
report and an operator's action arriving together both land in the history.

The document also says what became of its latest INT_L02 message (``lrm_delivery``): written here with
the document (``held`` when its time is not known yet, else ``queued`` with the distributionID chosen
before the write), then moved forward by ``lrm_delivery.DeliveryTracker``.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterator
from datetime import datetime

from connectors import lrm
from mappings.orientations import OrientationDoc
from sas_core.clock import utcnow
from sas_core.errors import BackendUnavailable, Conflict, Forbidden, NotFound
from sas_core.metrics import LRM_MESSAGES
from search_api.workflow import queries
from search_api.workflow.scope import Scope, sees_orientation
from search_api.workflow.store import DocStore, Versioned

log = logging.getLogger(__name__)
INDEX = "orientations"
MAX_CAS_ATTEMPTS = 20

#: Statuses an operator may still act on (honour, cancel).
OPEN_STATUSES = {"oriented", "booked", "pending"}


class OrientationService:
    def __init__(self, *, store: DocStore, publisher, clock: Callable[[], datetime] = utcnow, audit=None) -> None:
        self.store = store
        self.publisher = publisher
        self.clock = clock
        #: ``search_api.audit.AuditLog``: list pages and exports are recorded here, whoever calls (API or web
        #: pages), for the scope's viewer. Single views are recorded by the route (``get`` also serves checks).
        self.audit = audit

    # -- writing ------------------------------------------------------------------------------------

    def record(self, doc: OrientationDoc) -> tuple[dict, bool]:
        """Store a new orientation and publish it; ``(document, False)`` when the id existed already."""
        document = doc.model_dump(mode="json")
        outgoing = self._outgoing(document, previous=None)
        if not self.store.create(INDEX, doc.id, document):
            existing = self.store.get(INDEX, doc.id)
            if existing is None:  # pragma: no cover - deleted in between
                raise BackendUnavailable("orientation vanished while being recorded")
            return existing.source, False
        self._publish(document, outgoing)
        return document, True

    def change(self, orientation_id: str, *, by: str, status: str | None = None, fields: dict | None = None,
               guard: Callable[[dict], None] | None = None) -> tuple[dict, bool]:
        """Set ``status`` (appending to the history when it changes) and ``fields`` under
        compare-and-set; ``guard(current)`` may refuse the change by raising. Returns (document, changed)."""
        for _ in range(MAX_CAS_ATTEMPTS):
            current = self.store.get(INDEX, orientation_id)
            if current is None:
                raise NotFound(f"no orientation {orientation_id}")
            if guard is not None:
                guard(current.source)
            updated, changed = self._apply(current, by=by, status=status, fields=fields or {})
            if not changed:
                return current.source, False
            outgoing = self._outgoing(updated, previous=current.source.get("lrm_delivery"))
            if self.store.replace(INDEX, current, updated):
                self._publish(updated, outgoing)
                return updated, True
            time.sleep(0.01)
        raise Conflict(f"orientation {orientation_id} is being changed by others; retry")

    def _apply(self, current: Versioned, *, by: str, status: str | None, fields: dict) -> tuple[dict, bool]:
        source = current.source
        updated = {**source}
        changed = False
        for key, value in fields.items():
            if updated.get(key) != value:
                updated[key] = value
                changed = True
        now = self.clock().isoformat()
        if status is not None and status != source.get("status"):
            updated["status"] = status
            updated["status_history"] = [*source.get("status_history", []), {"status": status, "at": now, "by": by}]
            changed = True
        if changed:
            updated["updated_at"] = now
            OrientationDoc.model_validate(updated)   # never write what the mapping would refuse
        return updated, changed

    def _outgoing(self, document: dict, *, previous: dict | None) -> tuple[str, str] | None:
        """Set ``document["lrm_delivery"]`` for the message this write means; ``(method, distributionID)``
        to publish once stored, or ``None`` (INT_L02 off, or held until the time is known)."""
        if not getattr(self.publisher, "enabled", False):
            return None
        now = self.clock().isoformat()
        announced = bool((previous or {}).get("announced"))
        held = lrm.hold_reason(document)
        if held is not None:
            document["lrm_delivery"] = {"state": "held", "announced": announced, "code": held, "updated_at": now}
            return None
        # The first message sent is a creation, even when the orientation was recorded earlier (held).
        method = lrm.UPDATE if announced else lrm.CREATE
        distribution_id = self.publisher.new_message_id()
        document["lrm_delivery"] = {"state": "queued", "announced": True, "distribution_id": distribution_id,
                                    "method": method, "updated_at": now}
        return method, distribution_id

    def _publish(self, document: dict, outgoing: tuple[str, str] | None) -> None:
        if outgoing is None:
            if (document.get("lrm_delivery") or {}).get("state") == "held":
                LRM_MESSAGES.labels("held").inc()
            return
        method, distribution_id = outgoing
        try:
            self.publisher.publish(document, method=method, message_id=distribution_id)
            LRM_MESSAGES.labels("queued").inc()
        except Exception:  # noqa: BLE001 - the orientation is stored; the message is best effort
            log.exception("could not queue the LRM message", extra={"orientation_id": document.get("id")})

    # -- reading ------------------------------------------------------------------------------------

    def get(self, orientation_id: str, scope: Scope) -> dict:
        found = self.store.get(INDEX, orientation_id)
        if found is None or not sees_orientation(scope, found.source):
            # Not found and not yours look the same: ids of other territories are not disclosed.
            raise NotFound(f"no orientation {orientation_id}")
        return found.source

    def list(self, scope: Scope, filters: queries.OrientationFilters, *, page: int,
             size: int) -> tuple[int, list[dict]]:
        body = queries.orientation_list_body(scope, filters, page=page, size=size)
        response = self.store.search(INDEX, body)
        hits = response["hits"]
        results = [h["_source"] for h in hits["hits"]]
        if self.audit is not None and scope.viewer is not None:
            self.audit.record(principal=scope.viewer, action="list", orientation_ids=[r.get("id") for r in results],
                              filters={**dataclasses.asdict(filters), "page": page, "size": size})
        return int(hits["total"]["value"]), results

    def export(self, scope: Scope, filters: queries.OrientationFilters) -> Iterator[dict]:
        documents = (hit["_source"] for hit in self.store.scan(INDEX, queries.orientation_export_body(scope, filters)))
        if self.audit is not None and scope.viewer is not None:
            documents = self.audit.exporting(principal=scope.viewer, documents=documents,
                                             filters=dataclasses.asdict(filters))
        yield from documents

    # -- operators' actions ---------------------------------------------------------------------------

    def honour(self, orientation_id: str, *, scope: Scope, by: str) -> dict:
        """An effecteur confirms that the consultation took place (status ``fulfilled``)."""
        self.get(orientation_id, scope)

        def guard(current: dict) -> None:
            if current.get("status") not in OPEN_STATUSES | {"fulfilled"}:
                raise Conflict(f"orientation is {current.get('status')}: it cannot be marked honoured")

        document, _ = self.change(orientation_id, by=by, status="fulfilled", guard=guard)
        return document

    def cancel(self, orientation_id: str, *, scope: Scope, by: str, reason: str | None,
               on_cancel: Callable[[dict], None] | None = None) -> dict:
        """Cancel an open orientation; ``on_cancel(document)`` runs once when it really changed
        (e.g. giving the place back in the platform's agenda)."""
        self.get(orientation_id, scope)

        def guard(current: dict) -> None:
            if current.get("status") not in OPEN_STATUSES | {"cancelled"}:
                raise Conflict(f"orientation is {current.get('status')}: it cannot be cancelled any more")

        fields = {"cancellation_reason": reason} if reason else {}
        document, changed = self.change(orientation_id, by=by, status="cancelled", fields=fields, guard=guard)
        if changed and on_cancel is not None:
            on_cancel(document)
        return document


def require_effecteur_of(scope: Scope, document: dict) -> None:
    """Only the effecteur concerned (or an administrator) may mark a consultation honoured."""
    if scope.everything:
        return
    if not scope.national_id or (document.get("effecteur") or {}).get("national_id") != scope.national_id:
        raise Forbidden("only the practitioner concerned may confirm this consultation")
