"""National structure ids: the directory's bare form and the guide's wire form.

The national directory (and so the ``offers`` index) holds a CPTS / MSP / centre FINESS as its 9
characters and an SOS Médecins association SIRET as its 14 digits. The SAS guide puts them on the wire
with a one-character prefix naming the kind of id (FINESS-invariant ``^1[0-9]{9}$``, SIRET-invariant
``^3[0-9]{14}$``, ``urn:oid:1.2.250.1.71.4.2.2``): vendors' Organizations, the SOS search parameter,
``orientation.structure.id`` and the INT_L02 ``organizationId`` all carry that form.

Every function here is idempotent — the lengths tell both forms apart — so that an id that has already
been converted is never prefixed a second time (``11950047225`` is what that bug looked like).
"""

from __future__ import annotations

import re

STRUCTURE_SYSTEM = "urn:oid:1.2.250.1.71.4.2.2"
FINESS_PREFIX = "1"
SIRET_PREFIX = "3"
FINESS_WIRE_RE = re.compile(r"^1[0-9]{9}$")
SIRET_WIRE_RE = re.compile(r"^3[0-9]{14}$")


def _wire(value: str | None, *, prefix: str, wire_length: int) -> str | None:
    value = (value or "").strip()
    if not value:
        return None
    if len(value) == wire_length and value.startswith(prefix):
        return value
    return prefix + value


def _bare(value: str | None, *, prefix: str, wire_length: int) -> str | None:
    value = (value or "").strip()
    if not value:
        return None
    if len(value) == wire_length and value.startswith(prefix):
        return value[1:]
    return value


def finess_wire(value: str | None) -> str | None:
    """``1`` + FINESS (10 characters) of a bare (9) or already prefixed (10) FINESS; ``None`` for none."""
    return _wire(value, prefix=FINESS_PREFIX, wire_length=10)


def siret_wire(value: str | None) -> str | None:
    """``3`` + SIRET (15 characters) of a bare (14) or already prefixed (15) SIRET; ``None`` for none."""
    return _wire(value, prefix=SIRET_PREFIX, wire_length=15)


def finess_bare(value: str | None) -> str | None:
    """The directory's 9-character FINESS of a wire (``1`` + 9) or bare FINESS."""
    return _bare(value, prefix=FINESS_PREFIX, wire_length=10)


def siret_bare(value: str | None) -> str | None:
    """The directory's 14-digit SIRET of a wire (``3`` + 14) or bare SIRET."""
    return _bare(value, prefix=SIRET_PREFIX, wire_length=15)
