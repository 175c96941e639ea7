"""Text normalisation done in Python because the minimal Elasticsearch has no asciifolding."""

from __future__ import annotations

import re
import unicodedata

_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def fold(text: str | None) -> str:
    """Lowercase, accents removed, punctuation collapsed to single spaces: ``"Saint-Étienne" → "saint etienne"``."""
    if not text:
        return ""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    stripped = stripped.replace("œ", "oe").replace("Œ", "oe").replace("æ", "ae").replace("Æ", "ae")
    return _NON_ALNUM.sub(" ", stripped.lower()).strip()
