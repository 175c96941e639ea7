"""The fixed query mix of ``sas bench search``: communes drawn by population, mostly general practice."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

GP_CODES = ("SM54", "SM26", "SM53")

#: Used only when the offers index cannot tell which specialties exist.
FALLBACK_OTHER_SPECIALTIES = {"SM40": 10, "SM15": 6, "SM38": 6, "SM04": 6, "SM42": 5, "SM19": 4, "SM32": 3, "SM34": 3}


@dataclass(frozen=True)
class BenchQuery:
    """One search of the mix: the API query parameters and what they mean."""

    params: tuple[tuple[str, str], ...]
    insee: str
    specialty: str

    def path(self) -> str:
        return "/v1/search?" + urlencode(self.params)

    def as_dict(self) -> dict[str, str]:
        return dict(self.params)


def build_query_mix(*, communes: Sequence, other_specialties: dict[str, int], n: int, seed: int,
                    gp_share: float = 0.7) -> list[BenchQuery]:
    """``n`` searches: the commune drawn with probability proportional to its population (communes
    without population, i.e. municipal districts, are covered by their city), ``gp_share`` of them for
    general practice and the rest for other specialties in proportion to how many places practise them;
    the place given as ``q`` (postcode and name, as an operator types it) or as ``insee``; default window
    (now → 48 h), default sort and page."""
    rng = random.Random(seed)
    populated = [c for c in communes if c.population]
    weights = [c.population for c in populated]
    others = sorted(other_specialties.items())
    other_codes = [code for code, _ in others]
    other_weights = [count for _, count in others]
    mix: list[BenchQuery] = []
    for commune in rng.choices(populated, weights=weights, k=n):
        specialty = "SM54" if rng.random() < gp_share or not other_codes else rng.choices(other_codes, other_weights)[0]
        if rng.random() < 0.6 and commune.postcodes:
            where = ("q", f"{commune.postcodes[0]} {commune.name}")
        else:
            where = ("insee", commune.insee)
        mix.append(BenchQuery(params=(where, ("specialty", specialty)), insee=commune.insee, specialty=specialty))
    return mix


def mix_fingerprint(mix: Sequence[BenchQuery]) -> str:
    digest = hashlib.sha256()
    for query in mix:
        digest.update(query.path().encode())
    return digest.hexdigest()[:16]


def other_specialty_weights(es, *, prefix: str) -> dict[str, int]:
    """How many participating places practise each non-general-practice specialty (the 30 % of the mix)."""
    from mappings.registry import alias_name

    body = {"size": 0, "query": {"term": {"sas.participates": True}},
            "aggs": {"s": {"terms": {"field": "specialties", "size": 200}}}}
    buckets = es.search(index=alias_name(prefix, "offers"), body=body)["aggregations"]["s"]["buckets"]
    weights = {b["key"]: b["doc_count"] for b in buckets if b["key"] not in GP_CODES and b["key"].startswith("SM")}
    return weights or dict(FALLBACK_OTHER_SPECIALTIES)


class PlaceIndex:
    """INSEE code → commune centroid (where the API places ``q`` / ``insee`` of the mix)."""

    def __init__(self, communes: Sequence) -> None:
        self.points = {c.insee: (c.lat, c.lon) for c in communes}

    def point(self, insee: str) -> tuple[float, float]:
        return self.points[insee]
