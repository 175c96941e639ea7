"""Input checks shared by several routes.

Dates: Python's ``datetime`` stops at year 9999, so adding a default window, a day or a time zone to a date
near it (``9999-12-31``) raises ``OverflowError`` — a 500 for a typo. Dates are therefore accepted between
``MIN_YEAR`` and ``MAX_YEAR`` only, with a clear 4xx otherwise: 400 (``BadRequest``) for query strings
parsed by hand, 422 for request bodies (``Moment`` in a pydantic model).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator

from sas_core.errors import BadRequest

MIN_YEAR = 1900
MAX_YEAR = 2200


def year_in_range(moment: datetime) -> bool:
    return MIN_YEAR <= moment.year <= MAX_YEAR


def check_moment(moment: datetime, *, name: str) -> datetime:
    """``moment`` itself, or ``BadRequest`` when its year is out of range."""
    if not year_in_range(moment):
        raise BadRequest(f"{name} must be between years {MIN_YEAR} and {MAX_YEAR}, got {moment.isoformat()}")
    return moment


def _validate(moment: datetime) -> datetime:
    if not year_in_range(moment):
        raise ValueError(f"dates are accepted between years {MIN_YEAR} and {MAX_YEAR}")
    return moment


#: A request-body date-time within the accepted years (422 otherwise).
Moment = Annotated[datetime, AfterValidator(_validate)]
