"""The platform's one clock and one wire form of an instant.

Every stored or queried date is UTC; a naive ``datetime`` reaching a body is a bug (its timezone was never
resolved), so ``iso`` refuses it rather than guessing.
"""

from __future__ import annotations

from datetime import datetime, timezone


def utcnow() -> datetime:
    """Now, timezone-aware, in UTC."""
    return datetime.now(timezone.utc)


def iso(moment: datetime) -> str:
    """UTC ISO 8601 with milliseconds and ``Z`` (Elasticsearch ``date`` fields keep milliseconds)."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: resolve its timezone first")
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso_or_none(moment: datetime | None) -> str | None:
    return iso(moment) if moment is not None else None
