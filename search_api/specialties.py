"""The ``specialty`` search parameter: TRE_R38 codes or labels → the codes to search.

General practice has three codes in TRE_R38 (``SM54`` Médecine générale, ``SM26`` Qualifié en médecine
générale, ``SM53`` Spécialiste en médecine générale): asking for any of them, or for a general-practice
label, searches the three.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sas_core.errors import BadRequest
from sas_core.text import fold
from search_api.query.defaults import GENERAL_PRACTICE_CODES, GENERAL_PRACTICE_SYNONYMS

_CODE = re.compile(r"^[A-Z]{2,3}\d{2}$")
_SUFFIX = re.compile(r"\s*\((?:SM|SCD|SI|SC|SP|SF)\)\s*$", re.IGNORECASE)


def _label_key(display: str) -> str:
    """Folded official display without its ``(SM)`` suffix: ``"Médecine générale (SM)"`` → ``"medecine generale"``."""
    return fold(_SUFFIX.sub("", display))


@dataclass(frozen=True)
class SpecialtyResolver:
    """TRE_R38 code → display, and folded label → codes."""

    labels: dict[str, str]

    def __post_init__(self) -> None:
        by_label: dict[str, set[str]] = {}
        for code, display in self.labels.items():
            by_label.setdefault(_label_key(display), set()).add(code)
        for synonym in GENERAL_PRACTICE_SYNONYMS:
            by_label.setdefault(synonym, set()).update(GENERAL_PRACTICE_CODES)
        object.__setattr__(self, "_by_label", {k: frozenset(v) for k, v in by_label.items()})

    def label(self, code: str) -> str | None:
        display = self.labels.get(code)
        return _SUFFIX.sub("", display) if display else None

    def label_codes(self, text: str) -> tuple[str, ...] | None:
        """The codes of exactly this label (official display, folded, without its suffix), else ``None``;
        for labels holding a comma (``Psychiatrie, option enfant et adolescent``), which ``resolve``
        would split."""
        found = self._by_label.get(fold(_SUFFIX.sub("", text)))  # type: ignore[attr-defined]
        return tuple(sorted(found)) if found else None

    def resolve(self, raw: list[str] | None) -> tuple[str, ...]:
        """Codes to search for the ``specialty`` values (each a code or a label; commas separate
        several); ``()`` when none is asked. Unknown values raise ``BadRequest`` with suggestions."""
        codes: set[str] = set()
        for value in _split(raw):
            codes.update(self._resolve_one(value))
        if codes & set(GENERAL_PRACTICE_CODES):
            codes.update(GENERAL_PRACTICE_CODES)
        return tuple(sorted(codes))

    def _resolve_one(self, value: str) -> frozenset[str]:
        upper = value.strip().upper()
        if _CODE.match(upper):
            if upper not in self.labels:
                raise BadRequest(f"unknown specialty code {value!r} (TRE_R38 codes look like SM54)")
            return frozenset({upper})
        key = fold(value)
        found = self._by_label.get(key)  # type: ignore[attr-defined]
        if found:
            return found
        # A unique label containing every word typed ("pediatrie" → "Pédiatrie").
        words = key.split()
        matches = [k for k in self._by_label if words and all(w in k.split() for w in words)]  # type: ignore[attr-defined]
        if len(matches) == 1:
            return self._by_label[matches[0]]  # type: ignore[attr-defined]
        suggestions = sorted(matches or [k for k in self._by_label if key and key[:4] in k])[:5]  # type: ignore[attr-defined]
        hint = f"; did you mean one of {suggestions}?" if suggestions else ""
        raise BadRequest(f"unknown specialty {value!r}: give a TRE_R38 code (e.g. SM54) or its label{hint}")


def _split(raw: list[str] | None) -> list[str]:
    values: list[str] = []
    for item in raw or []:
        values.extend(part.strip() for part in item.split(",") if part.strip())
    return values
