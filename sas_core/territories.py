"""Territories: one SAS per département, named ``SAS-<département code>`` (e.g. ``SAS-92``, ``SAS-2A``)."""

from __future__ import annotations

import re

_TERRITORY_RE = re.compile(r"^SAS-(\d{2}|2A|2B|97[1-6])$")


def territory_for_departement(departement: str) -> str:
    """The SAS territory code covering a département code (``"47"`` → ``"SAS-47"``)."""
    code = departement.strip().upper()
    if len(code) == 1:
        code = "0" + code
    return f"SAS-{code}"


def departement_from_insee(insee: str) -> str:
    """Département of an INSEE commune code: 2 characters, 3 for overseas (``97x``)."""
    insee = insee.strip().upper()
    return insee[:3] if insee.startswith("97") else insee[:2]


def is_territory(code: str) -> bool:
    """Whether ``code`` is a well-formed territory code."""
    return bool(_TERRITORY_RE.match(code))
