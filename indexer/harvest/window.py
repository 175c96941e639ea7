"""The time window of one harvest run: one freshness tier's [now + start_h, now + end_h], or the legacy
modes (``incremental``: the next hours; ``full``: the next days)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from connectors.vendors.config import TierConfig, VendorConfig

Mode = Literal["incremental", "full"]


@dataclass(frozen=True)
class Window:
    """The time window of one run: slots starting in [start, end] (both ends included, as the ``ge`` /
    ``le`` sent to the vendor and the range that scopes the run's deletions)."""

    mode: Mode
    start: datetime
    end: datetime
    #: The freshness tier the run belongs to ("" for a manual run over given bounds).
    tier: str = ""

    @classmethod
    def for_mode(cls, vendor: VendorConfig, mode: Mode, *, now: datetime) -> Window:
        return cls.for_tier(vendor.tier(mode), now=now)

    @classmethod
    def for_tier(cls, tier: TierConfig, *, now: datetime) -> Window:
        # Whole seconds: the same instant is sent to the vendor and used to scope deletions.
        base = now.replace(microsecond=0)
        return cls("full" if tier.sweep else "incremental", base + timedelta(hours=tier.start_h),
                   base + timedelta(hours=tier.end_h), tier.name)

    def slices(self, hours: float | None) -> list[Window]:
        """This window as consecutive windows of at most ``hours`` (itself when ``None`` or shorter).
        Adjacent slices share their boundary instant: a slot starting exactly there is in both, never
        in neither."""
        if hours is None or self.end - self.start <= timedelta(hours=hours):
            return [self]
        step = timedelta(hours=hours)
        out: list[Window] = []
        low = self.start
        while low < self.end:
            high = min(low + step, self.end)
            out.append(Window(self.mode, low, high, self.tier))
            low = high
        return out
