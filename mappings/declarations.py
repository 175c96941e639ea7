"""Declaration document: an unavailability or a problem reported about a practitioner at a place."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from mappings.common import Doc


class DeclarationPeriod(Doc):
    start: datetime
    end: datetime | None = None        # None: indefinitely from start


class DeclarationDoc(Doc):
    id: str
    kind: Literal["unavailable", "wrong_specialty", "other"]
    declared_by_role: str
    declared_by: str
    national_id: str | None = None
    offer_id: str | None = None
    territory: str | None = None
    periods: list[DeclarationPeriod] = []
    comment: str | None = None
    created_at: datetime
    cancelled_at: datetime | None = None
    active: bool = True
