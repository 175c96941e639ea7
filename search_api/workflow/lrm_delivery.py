"""INT_L02 delivery state of each orientation (``lrm_delivery``): what became of its latest message.

The orientation service writes ``held`` or ``queued`` with the document itself (the distributionID is
chosen before the write, so that no later report can arrive about a message the document does not
know). Then, in any order, the publisher's thread reports the broker's confirm (``published``), and
the Hub listener the regulation software's final acknowledgement (``acknowledged``) or an error of the
Hub or of the regulation software (``refused``, with code and reason). Only the latest message counts:
it carries the whole appointment, so a report about an earlier one changes nothing; and a state never
goes back (a confirm processed after the acknowledgement leaves it acknowledged).

Runs in the API process (the listener thread and the publisher's thread call it); the query path never
imports it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime

from connectors.lrm import HubReport
from sas_core.clock import utcnow
from sas_core.metrics import LRM_MESSAGES, LRM_REFUSALS, LRM_UNDELIVERED
from search_api.workflow import queries
from search_api.workflow.store import DocStore, Versioned

log = logging.getLogger(__name__)
INDEX = "orientations"
MAX_CAS_ATTEMPTS = 20
#: A state only moves forward.
RANK = {"held": 0, "queued": 1, "published": 2, "acknowledged": 3, "refused": 4}
UNDELIVERED = ("held", "queued", "published", "refused")


class DeliveryTracker:
    def __init__(self, *, store: DocStore, clock: Callable[[], datetime] = utcnow) -> None:
        self.store = store
        self.clock = clock

    # -- the publisher's thread ----------------------------------------------------------------------

    def published(self, orientation_id: str, distribution_id: str) -> None:
        self._advance(distribution_id, {"state": "published"}, orientation_id=orientation_id)

    def failed(self, orientation_id: str, distribution_id: str, code: str, reason: str) -> None:
        self._advance(distribution_id, {"state": "refused", "code": code, "reason": reason, "by": "broker"},
                      orientation_id=orientation_id)

    # -- the Hub listener ------------------------------------------------------------------------------

    def report(self, report: HubReport) -> None:
        if report.kind == "ack" and not report.refused:
            fields = {"state": "acknowledged", "by": report.sender}
        else:
            code = str(report.code) if report.code is not None else ("REFUSED" if report.kind == "ack" else None)
            reason = ": ".join(part for part in (report.status, report.cause) if part) or None
            fields = {"state": "refused", "code": code, "reason": reason, "by": report.sender}
        self._advance(report.distribution_id or "", fields)

    # -- one step forward, under compare-and-set ------------------------------------------------------

    def _find(self, distribution_id: str, orientation_id: str | None) -> Versioned | None:
        if orientation_id is not None:
            return self.store.get(INDEX, orientation_id)
        return self.store.first(INDEX, queries.delivery_body(distribution_id=distribution_id))

    def _advance(self, distribution_id: str, fields: dict, *, orientation_id: str | None = None) -> bool:
        state = fields["state"]
        for _ in range(MAX_CAS_ATTEMPTS):
            current = self._find(distribution_id, orientation_id)
            delivery = (current.source.get("lrm_delivery") or {}) if current is not None else {}
            if current is None or delivery.get("distribution_id") != distribution_id:
                # About an earlier message (superseded by a later one that carries everything), or not ours.
                log.info("INT_L02 report about a superseded or unknown message",
                         extra={"distribution_id": distribution_id, "state": state})
                return False
            if RANK[state] <= RANK.get(delivery.get("state") or "", 0):
                return False
            patch = {"lrm_delivery": {**fields, "updated_at": self.clock().isoformat()}}
            if self.store.patch(INDEX, current, patch):
                LRM_MESSAGES.labels(state).inc()
                if state == "refused":
                    LRM_REFUSALS.labels(fields.get("code") or "unknown").inc()
                    log.warning("INT_L02 message refused", extra={
                        "orientation_id": current.id, "distribution_id": distribution_id,
                        "code": fields.get("code"), "by": fields.get("by")})
                return True
            time.sleep(0.01)
        log.error("INT_L02 delivery state not recorded: too many concurrent changes",
                  extra={"distribution_id": distribution_id, "state": state})
        return False

    # -- figures ------------------------------------------------------------------------------------------

    def undelivered(self, *, restriction: dict | None = None) -> dict[str, dict[str, int]]:
        """Territory → state → orientations whose latest message is not acknowledged (within
        ``restriction``, the caller's scope filter, when given)."""
        answer = self.store.search(INDEX, queries.undelivered_body(states=UNDELIVERED, restriction=restriction))
        return {b["key"]: {s["key"]: int(s["doc_count"]) for s in b["state"]["buckets"]}
                for b in answer.get("aggregations", {}).get("territory", {}).get("buckets", [])}

    def refresh_gauge(self) -> None:
        """``sas_lrm_undelivered`` from the index (called before each ``/metrics`` scrape)."""
        figures = self.undelivered()
        LRM_UNDELIVERED.clear()
        for territory, states in figures.items():
            for state in UNDELIVERED:
                LRM_UNDELIVERED.labels(territory, state).set(states.get(state, 0))
