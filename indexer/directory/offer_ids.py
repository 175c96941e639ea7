"""Offer ids: stable per (professional, place), so that a reload overwrites and never duplicates."""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache

from connectors.directory.records import PracticeRecord
from sas_core.text import fold

_SAFE_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_SOS_PREFIX = "sos medecins"
#: Names, cities and structure names repeat a lot: fold each distinct one once.
fold_cached = lru_cache(maxsize=1 << 18)(fold)


def normalized_departement(value: str) -> str:
    value = value.strip().upper()
    return value.zfill(2) if value.isdigit() and len(value) < 2 else value


def _hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


def practice_offer_id(record: PracticeRecord) -> str:
    """``ps-<national id>-<structure technical id>`` (an address hash when there is no technical id)."""
    place = record.technical_id
    if not place or not _SAFE_ID.match(place):
        place = "a" + _hash(record.place_key())
    return f"ps-{record.national_id}-{place}"


def sos_offer_id(record: PracticeRecord) -> str:
    place = record.technical_id
    if not place or not _SAFE_ID.match(place):
        place = "a" + _hash(record.place_key())
    return f"sos-{place}"


def is_sos_place(record: PracticeRecord) -> bool:
    """SOS Médecins fixed consultation places: ``Raison sociale site`` starting "SOS MEDECINS"."""
    name = record.structure_name
    return name[:3].upper() == "SOS" and fold_cached(name).startswith(_SOS_PREFIX)

