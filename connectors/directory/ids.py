"""National practitioner identifiers: RPPS (11 digits, Luhn key) and ADELI (9 characters).

The directory extraction carries the raw id (``Identifiant PP``) and the national form prefixed by its
type (``Identification nationale PP``: ``8`` + RPPS, ``0`` + ADELI), which is what vendor FHIR APIs
use. Checks are pure functions so that the parsers, the generator and the tests share them.
"""

from __future__ import annotations

import re

RPPS_TYPE = "8"
ADELI_TYPE = "0"

_RPPS_RE = re.compile(r"^\d{11}$")
# ADELI: 2-character département (digits, or 2A/2B), 2-digit profession, 4-digit order, 1 key.
_ADELI_RE = re.compile(r"^(?:\d{2}|2[AB])\d{7}$")


def luhn_is_valid(digits: str) -> bool:
    """Whether ``digits`` (its last digit being the key) passes the Luhn check."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def luhn_key(digits: str) -> str:
    """The Luhn check digit to append to ``digits``."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2 == 0:  # these positions get doubled once the key is appended
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return str((10 - total % 10) % 10)


def check_rpps(raw: str) -> str | None:
    """``None`` when ``raw`` is a valid RPPS number, else the rejection reason."""
    if not _RPPS_RE.match(raw):
        return "invalid_rpps_format"
    if not luhn_is_valid(raw):
        return "invalid_rpps_key"
    return None


def check_adeli(raw: str) -> str | None:
    """``None`` when ``raw`` looks like an ADELI number, else the rejection reason.

    Only the shape is checked: the ADELI key rule is not published as reliably as the RPPS one, and
    rejecting real practitioners on a guessed rule would be worse than accepting a mistyped number.
    """
    return None if _ADELI_RE.match(raw.upper()) else "invalid_adeli_format"


def national_id(id_type: str, raw: str) -> str:
    """``8`` + RPPS or ``0`` + ADELI."""
    return f"{id_type}{raw}"


def check_national(id_type: str, raw: str, national: str | None) -> str | None:
    """Validate one (type, raw id, national id) triple as found in the extraction.

    Returns the rejection reason or ``None``. A national id that is present must equal type + raw id.
    """
    if id_type == RPPS_TYPE:
        reason = check_rpps(raw)
    elif id_type == ADELI_TYPE:
        reason = check_adeli(raw)
    else:
        return "invalid_id_type"
    if reason:
        return reason
    if national and national != national_id(id_type, raw):
        return "national_id_mismatch"
    return None


def split_national(value: str) -> tuple[str, str] | None:
    """``"810001234567"`` → ``("rpps", "10001234567")``; ``None`` when it is neither form."""
    if len(value) == 12 and value[0] == RPPS_TYPE and check_rpps(value[1:]) is None:
        return "rpps", value[1:]
    if len(value) == 10 and value[0] == ADELI_TYPE and check_adeli(value[1:]) is None:
        return "adeli", value[1:]
    return None
