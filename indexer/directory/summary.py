"""What one directory load did: its summary (CLI output) and its ``harvest_runs`` document."""

from __future__ import annotations

from dataclasses import dataclass, field

from indexer.load_summary import FileLoadSummary
from sas_core.clock import iso, iso_or_none
from sas_core.counts import ReasonCounts


@dataclass(kw_only=True)
class LoadSummary(FileLoadSummary):
    """What one directory load did (printed by the CLI, stored as a ``harvest_runs`` document)."""

    mode: str                                   # full | incremental
    sources: dict[str, str] = field(default_factory=dict)
    places: int = 0                             # offer documents built
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    #: Offers absent from the file but kept: a rejected line of this load names their professional.
    kept_rejected: int = 0
    #: Rejected lines whose national id could not be read (their offers are only protected by the cap).
    rejected_unkeyed: int = 0
    #: Harvested slots removed because the offer they belonged to was deleted by this load.
    slots_removed: int = 0
    not_geocoded_by_reason: ReasonCounts = field(default_factory=ReasonCounts)
    precision: ReasonCounts = field(default_factory=ReasonCounts)
    remarks: ReasonCounts = field(default_factory=ReasonCounts)
    kinds: ReasonCounts = field(default_factory=ReasonCounts)
    geocoder: dict = field(default_factory=dict)

    @property
    def not_geocoded(self) -> int:
        return self.not_geocoded_by_reason.count

    @property
    def indexed(self) -> int:
        """Documents written (created or changed)."""
        return self.created + self.updated

    @property
    def places_per_s(self) -> float:
        return self.places / self.duration_s

    @property
    def rejected_share(self) -> float:
        return self.rejected / self.lines_read if self.lines_read else 0.0

    def to_dict(self) -> dict:
        return {
            "run_id": self.run_id,
            "mode": self.mode,
            "status": self.status,
            "error": self.error,
            "sources": self.sources,
            "lines_read": self.lines_read,
            "places": self.places,
            "kinds": self.kinds.as_dict(),
            "indexed": self.indexed,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "deleted": self.deleted,
            "kept_rejected": self.kept_rejected,
            "rejected_unkeyed": self.rejected_unkeyed,
            "slots_removed": self.slots_removed,
            "failed": self.failed,
            "rejected": self.rejected,
            "rejected_by_reason": self.rejected_by_reason.as_dict(),
            "not_geocoded": self.not_geocoded,
            "not_geocoded_by_reason": self.not_geocoded_by_reason.as_dict(),
            "geo_precision": self.precision.as_dict(),
            "remarks": self.remarks.as_dict(),
            "geocoder": self.geocoder,
            "started_at": iso(self.started_at),
            "ended_at": iso_or_none(self.ended_at),
            "duration_s": round(self.duration_s, 3),
            "places_per_s": round(self.places_per_s, 1),
        }


def threshold_message(summary: LoadSummary, threshold: float, *, early: bool = False) -> str:
    reasons = summary.rejected_by_reason.describe(6)
    where = f"after {summary.lines_read} lines" if early else f"of {summary.lines_read} lines"
    return (f"directory load refused: {summary.rejected} rejected lines {where} "
            f"({summary.rejected_share:.1%}) exceed the threshold of {threshold:.1%} "
            f"(SAS_DIRECTORY_REJECT_THRESHOLD); by reason: {reasons}")


def run_document(summary: LoadSummary) -> dict:
    """The load's ``harvest_runs`` document (``kind="directory"``)."""
    return {
        "id": summary.run_id,
        "kind": "directory",
        "vendor": None,
        "mode": summary.mode,
        "started_at": iso(summary.started_at),
        "ended_at": iso_or_none(summary.ended_at),
        "duration_s": round(summary.duration_s, 3),
        "status": summary.status,
        "requests": 0,
        "read": summary.lines_read,
        "upserted": summary.indexed,
        "deleted": summary.deleted,
        "unchanged": summary.unchanged,
        "rejected": summary.rejected,
        "rejected_by_reason": summary.rejected_by_reason.as_items(),
        "errors": [summary.error] if summary.error else [],
        "stale_marked": 0,
    }
