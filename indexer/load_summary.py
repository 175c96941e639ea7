"""What every file load has in common (the directory load, the address base load): when it ran, how it
ended, the lines it read, what Elasticsearch refused and the lines rejected, by reason."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sas_core.clock import utcnow
from sas_core.counts import ReasonCounts


@dataclass(kw_only=True)
class FileLoadSummary:
    run_id: str
    started_at: datetime = field(default_factory=utcnow)
    ended_at: datetime | None = None
    lines_read: int = 0
    failed: int = 0                             # refused by Elasticsearch
    rejected_by_reason: ReasonCounts = field(default_factory=ReasonCounts)
    status: str = "running"
    error: str | None = None

    @property
    def rejected(self) -> int:
        return self.rejected_by_reason.count

    @property
    def duration_s(self) -> float:
        end = self.ended_at or utcnow()
        return max((end - self.started_at).total_seconds(), 1e-9)
