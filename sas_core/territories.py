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


#: The départements the platform has SAS territories for: those of the communes reference table
#: (metropolitan 01–95 with Corsica as 2A/2B instead of 20, and the overseas 971–974 and 976).
DEPARTEMENTS: tuple[str, ...] = (
    *(f"{n:02d}" for n in range(1, 96) if n != 20), "2A", "2B", "971", "972", "973", "974", "976",
)

_SAMU_PREFIX = "fr.health.samu"


def samu_id(territory: str) -> str:
    """Hub Santé identifier of the SAMU of a territory: ``SAS-33`` → ``fr.health.samu330``, ``SAS-2A`` →
    ``fr.health.samu2A0``, ``SAS-974`` → ``fr.health.samu974`` (the département code, padded to three
    characters with a ``0``), the form regulation software gives as INT_L01's ``origin``."""
    code = territory.strip().upper().removeprefix("SAS-")
    return f"{_SAMU_PREFIX}{code if len(code) == 3 else code + '0'}"


def known_samu_ids() -> dict[str, str]:
    """Every SAMU identifier the platform knows → its territory (one SAMU per département)."""
    return {samu_id(f"SAS-{d}"): f"SAS-{d}" for d in DEPARTEMENTS}


def normalise_samu_id(value: str) -> str:
    """``FR.HEALTH.SAMU2a0`` → ``fr.health.samu2A0``: the prefix is matched without case, the code is upper-case."""
    text = value.strip()
    if text.lower().startswith(_SAMU_PREFIX):
        return _SAMU_PREFIX + text[len(_SAMU_PREFIX):].upper()
    return text
