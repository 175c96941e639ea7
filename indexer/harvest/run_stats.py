"""Counters of one harvest run (what its ``harvest_runs`` document reports)."""

from __future__ import annotations

from dataclasses import dataclass, field

from indexer.run_records import MAX_ERRORS
from sas_core.counts import ReasonCounts


@dataclass
class RunStats:
    """Counters of one run (what the ``harvest_runs`` document reports)."""

    requests: int = 0
    batches: int = 0
    batches_failed: int = 0
    read: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    expired_deleted: int = 0
    stale_marked: int = 0
    #: Deletions the mass-deletion guard held back (slots kept, marked stale), and why (reason → slots).
    deletions_held: int = 0
    alerts: ReasonCounts = field(default_factory=ReasonCounts)
    places_created: int = 0
    #: Indexed slots of the window read from Elasticsearch (``ExistingSlots``).
    indexed_read: int = 0
    #: Batch retries after the vendor was unavailable, and whether some were still due when the budget ran out.
    batches_retried: int = 0
    retry_pending: bool = False
    rejected: ReasonCounts = field(default_factory=ReasonCounts)
    flags: ReasonCounts = field(default_factory=ReasonCounts)
    errors: ReasonCounts = field(default_factory=ReasonCounts)
    error_messages: list[str] = field(default_factory=list)

    def error(self, reason: str, message: str, *, count: int = 1) -> None:
        """``count`` errors of ``reason``; ``message`` kept verbatim (the first few distinct ones)."""
        self.errors[reason] += count
        if len(self.error_messages) < MAX_ERRORS and message not in self.error_messages:
            self.error_messages.append(message)


    def reasons(self) -> ReasonCounts:
        """Every count of the run by reason: rejections as they are, ``flag:…`` and ``error:…``."""
        return ReasonCounts.prefixed({"": self.rejected, "flag:": self.flags, "error:": self.errors})
