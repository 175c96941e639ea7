"""Counts by reason: what a load, a harvest or a parser skipped, rejected or flagged, and why.

One type for every run summary, so that the three forms the reports need (a sorted mapping for JSON
output, ``reason=count`` text for error messages, ``{"reason", "count"}`` items for ``harvest_runs``
documents) are written once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping


class ReasonCounts(Counter[str]):
    """reason → count. A ``Counter`` (``counts[reason] += 1``, ``update``, ``most_common`` work as usual)."""

    @property
    def count(self) -> int:
        """Everything counted, whatever the reason."""
        return sum(self.values())

    def as_dict(self) -> dict[str, int]:
        """Sorted by reason: stable JSON output."""
        return dict(sorted(self.items()))

    def as_items(self) -> list[dict[str, int | str]]:
        """``[{"reason": ..., "count": ...}]`` sorted by reason (``harvest_runs.rejected_by_reason``)."""
        return [{"reason": reason, "count": count} for reason, count in sorted(self.items())]

    def describe(self, most: int) -> str:
        """``reason=count`` of the ``most`` most frequent reasons, for a message a person reads."""
        return ", ".join(f"{reason}={count}" for reason, count in self.most_common(most))

    @classmethod
    def prefixed(cls, parts: Mapping[str, Mapping[str, int]]) -> ReasonCounts:
        """Several counts in one, each reason prefixed by its part's key (``""``, ``"flag:"``…)."""
        merged = cls()
        for prefix, counts in parts.items():
            for reason, count in counts.items():
                merged[f"{prefix}{reason}"] += count
        return merged
