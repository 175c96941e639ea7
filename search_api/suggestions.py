"""Suggestions for the address field from the platform's own data, never an outside service: numbered
addresses and streets of the national address base (``addresses`` index, when loaded) and communes of the
gazetteer (the one search uses to place ``q``). Built once at start-up (``search_api.services``)."""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from difflib import SequenceMatcher

from connectors.geocoding import normalize_city
from connectors.reference import Commune


class SuggestionIndex:
    """Sorted folded names and postcodes → communes; a prefix is two binary searches."""

    def __init__(self, communes: Iterable[Commune]) -> None:
        keys: list[tuple[str, int, Commune]] = []
        for commune in communes:
            rank = -(commune.population or 0)
            keys.append((normalize_city(commune.name), rank, commune))
            for postcode in commune.postcodes:
                keys.append((postcode, rank, commune))
        keys.sort(key=lambda k: (k[0], k[1], k[2].insee))
        self._keys = [k[0] for k in keys]
        self._entries = keys

    def suggest(self, text: str, *, limit: int) -> list[dict]:
        prefix = normalize_city(text) if not text.strip().isdigit() else text.strip()
        if not prefix:
            return []
        low = bisect.bisect_left(self._keys, prefix)
        high = bisect.bisect_right(self._keys, prefix + "\uffff")
        matches = sorted(self._entries[low:high][:2000], key=lambda k: (k[1], len(k[0]), k[0]))
        seen: set[str] = set()
        out: list[dict] = []
        for key, _, commune in matches:
            postcode = key if key.isdigit() else (commune.postcodes[0] if commune.postcodes else "")
            label = f"{postcode} {commune.name}".strip()
            if label in seen:
                continue
            seen.add(label)
            out.append({"label": label, "insee": commune.insee, "postcode": postcode, "city": commune.name,
                        "lat": commune.lat, "lon": commune.lon})
            if len(out) >= limit:
                break
        return out

    def closest(self, text: str, *, limit: int) -> list[dict]:
        """Communes whose name is closest to a misspelt one ("Bordaux" → Bordeaux): names sharing its first
        two letters, by similarity then population (the page offers them when ``q`` places nowhere)."""
        name = normalize_city(text.split(",")[-1])
        if len(name) < 3:
            return []
        low = bisect.bisect_left(self._keys, name[:2])
        high = bisect.bisect_right(self._keys, name[:2] + "\uffff")
        scored: dict[str, tuple[float, int, Commune]] = {}
        for key, rank, commune in self._entries[low:high]:
            if key.isdigit():
                continue
            ratio = SequenceMatcher(None, name, key).ratio()
            if ratio >= 0.7 and (commune.insee not in scored or scored[commune.insee][0] < ratio):
                scored[commune.insee] = (ratio, rank, commune)
        best = sorted(scored.values(), key=lambda s: (-round(s[0], 2), s[1]))[:limit]
        return [{"label": f"{(c.postcodes or [''])[0]} {c.name}".strip(), "insee": c.insee, "city": c.name,
                 "postcode": (c.postcodes or [""])[0]} for _, _, c in best]


class CombinedSuggestions:
    """Addresses / streets and communes in one list. Communes come first when the text reads as a commune
    (a postcode, or a commune name's prefix: "Bord"); addresses first when it starts with a number or
    matches no commune ("12 rue Sainte-Cath", "rue Sainte-Catherine")."""

    def __init__(self, communes: SuggestionIndex, addresses, *, address_limit: int) -> None:
        self.communes = communes
        self.addresses = addresses
        self.address_limit = address_limit

    def suggest(self, text: str, *, limit: int) -> list[dict]:
        communes = [dict(c, kind="municipality") for c in self.communes.suggest(text, limit=limit)]
        stripped = text.strip()
        if self.addresses is None or self.address_limit <= 0 or stripped.isdigit():
            return communes[:limit]
        addresses = self.addresses.suggest(text, limit=min(limit, self.address_limit))
        first, second = (communes, addresses) if communes and not stripped[:1].isdigit() else (addresses, communes)
        out, seen = [], set()
        for item in first + second:
            if item["label"] not in seen:
                seen.add(item["label"])
                out.append(item)
        return out[:limit]
