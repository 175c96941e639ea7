"""Bodies of the platform's own agenda (``/v1/agenda``)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from search_api.validation import Moment

#: Hard ceiling of items per call (the schema's); ``Settings.agenda_max_items`` (default 100) is the rule.
MAX_ITEMS = 500
MAX_LENGTH = timedelta(hours=12)


Mode = Literal["AMB", "HH", "VR"]
SlotType = Literal["PUBLIC", "PRO", "SNP", "CPTS"]


def _office_only() -> list[Mode]:
    """Default modes: an office consultation (AMB)."""
    return ["AMB"]


def _unscheduled_only() -> list[SlotType]:
    """Default types: unscheduled care (SNP)."""
    return ["SNP"]


class AgendaItem(BaseModel):
    """One slot (``capacity`` absent: one patient) or one time range taking up to ``capacity`` patients."""

    # Moment: bounded years, so that the UTC conversion of a date near 9999 cannot overflow (422, not 500).
    start: Moment = Field(description="ISO 8601 with offset, e.g. 2026-03-02T14:00:00+01:00")
    end: Moment
    capacity: int | None = Field(default=None, ge=1, le=100, description="time range: maximum number of patients")
    modes: list[Mode] = Field(default_factory=_office_only, min_length=1)
    types: list[SlotType] = Field(default_factory=_unscheduled_only, min_length=1)
    motive: str | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _check_times(self) -> AgendaItem:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("start and end need a UTC offset (e.g. +01:00 or Z)")
        if self.end <= self.start:
            raise ValueError("end must be after start")
        if self.end - self.start > MAX_LENGTH:
            raise ValueError("a slot or time range lasts 12 hours at most")
        return self


class AgendaPublish(BaseModel):
    offer_id: str = Field(min_length=1, max_length=200)
    items: list[AgendaItem] = Field(min_length=1, max_length=MAX_ITEMS,
                                    description="At most SAS_AGENDA_MAX_ITEMS (default 100) per call")


class AgendaSlotOut(BaseModel):
    id: str
    offer_id: str
    start: datetime
    end: datetime
    capacity: int | None = None
    booked_count: int = 0
    modes: list[str]
    types: list[str]
    motive: str | None = None


class AgendaPublished(BaseModel):
    created: list[AgendaSlotOut]
