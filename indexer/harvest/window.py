"""The time window of one harvest run (``incremental``: the next hours; ``full``: the next days)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from connectors.vendors.config import VendorConfig

Mode = Literal["incremental", "full"]


@dataclass(frozen=True)
class Window:
    """The time window of one run: slots starting in [start, end]."""

    mode: Mode
    start: datetime
    end: datetime

    @classmethod
    def for_mode(cls, vendor: VendorConfig, mode: Mode, *, now: datetime) -> Window:
        span = (timedelta(hours=vendor.incremental_window_h) if mode == "incremental"
                else timedelta(days=vendor.full_window_days))
        # Whole seconds: the same instant is sent to the vendor and used to scope deletions.
        start = now.replace(microsecond=0)
        return cls(mode, start, start + span)

