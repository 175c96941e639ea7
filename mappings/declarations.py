"""Declaration document: an unavailability or a problem reported about a practitioner at a place.

``kind = "unavailable"`` declarations that are ``active`` hide the practitioner from search during
their periods (``search_api.query.search.declarations_body`` reads them): every place when
``national_id`` is set (``scope = "practitioner"``), one place when only ``offer_id`` is set
(``scope = "place"``). ``subject_national_id`` always names the practitioner concerned (listing,
"my declarations"), whatever the scope. Effecteurs declare up to 3 periods per place, or one period
without end ("indefinitely from a date"). Regulators report "wrong specialty" or "other" problems
(information only) and "unavailable" for a bounded period (at most ``SAS_REPORT_MAX_HOURS`` from
filing), about places of their own territories only; ``territory`` is always the offer's, so that
the practitioner's own SAS sees and may cancel the report.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from mappings.common import Doc


class DeclarationPeriod(Doc):
    start: datetime
    end: datetime | None = None        # None: indefinitely from start


class DeclarationDoc(Doc):
    id: str
    kind: Literal["unavailable", "wrong_specialty", "other"]
    scope: Literal["practitioner", "place"] = "place"
    declared_by_role: str
    declared_by: str
    declared_by_name: str | None = None
    #: The author's roles and territories when filing (dashboards: who hid whom, from which SAS).
    declared_by_roles: list[str] = Field(default_factory=list)
    declared_by_territories: list[str] = Field(default_factory=list)
    subject_national_id: str | None = None
    subject_name: str | None = None
    national_id: str | None = None     # set only for practitioner-wide declarations (every place)
    offer_id: str | None = None
    place_address: str | None = None
    #: The offer's territory; a practitioner-wide unavailability whose places span several territories lists
    #: them all (a keyword array: each SAS's ``terms`` filter matches it).
    territory: str | list[str] | None = None
    periods: list[DeclarationPeriod] = []
    comment: str | None = None         # about the practitioner only: never patient details
    created_at: datetime
    cancelled_at: datetime | None = None
    cancelled_by: str | None = None
    active: bool = True
