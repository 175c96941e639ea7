"""The operator's address box over the ``addresses`` index: suggestions as they type, and the point a
typed (or picked) address names. Bodies come from ``search_api.query.addresses`` (pure).

Both are conveniences on top of the communes gazetteer, never a condition of searching: when the index
is missing, empty or unreachable, suggestions are the communes alone and a typed address is placed at
its commune (the answer's ``distance_precision`` then says ``municipality``)."""

from __future__ import annotations

import logging
import re

from connectors.addresses import address_key, normalize_number, street_key
from sas_core.errors import SasError
from sas_core.text import fold
from search_api.query.addresses import locate_body, numbers_body, suggest_body
from search_api.query.model import Precision

log = logging.getLogger(__name__)

_NUMBER_REP_STREET = re.compile(r"^(\d{1,5})\s*(bis|ter|quater|quinquies|[a-d])?\s+(\D.*)$")


def split_number(street_text: str) -> tuple[str, str, str]:
    """``"12 bis rue de la Paix"`` → ``("12", "bis", "rue de la paix")``; no number → ``("", "", text)``."""
    folded = fold(street_text)
    match = _NUMBER_REP_STREET.match(folded)
    if match:
        return match.group(1), match.group(2) or "", match.group(3)
    return "", "", folded


#: What ``locate`` looks for, the more exact first.
_LOCATED: tuple[Precision, ...] = ("address", "street")


class AddressSearch:
    """Suggestions and look-ups through the API's executor."""

    def __init__(self, executor) -> None:
        self.executor = executor

    def _search(self, body: dict) -> list[dict]:
        try:
            answer = self.executor.search(index="addresses", body=body)
        except (SasError, KeyError) as exc:  # no index yet, Elasticsearch busy: communes still answer
            log.info("address base unavailable for the address box: %s", exc)
            return []
        return [hit["_source"] for hit in answer.get("hits", {}).get("hits", [])]

    def suggest(self, text: str, *, limit: int) -> list[dict]:
        """Numbered addresses (a number typed first) or streets matching what was typed, best first."""
        number, rep, street = split_number(text)
        body = suggest_body(street if number else text, limit=limit * 3 if number else limit)
        if body is None:
            return []
        found = self._search(body)
        if number:
            # The typed number on each street found, in the streets' order; streets without it drop out.
            wanted = normalize_number(number, rep)
            keys = [f"{src['street_key']}|{wanted}" for src in found if src.get("street_key")]
            numbers = numbers_body(keys)
            numbered = {src["address_key"]: src for src in self._search(numbers)} if numbers is not None else {}
            found = [numbered[key] for key in keys if key in numbered][:limit]
        out = []
        for src in found:
            loc = src.get("location") or {}
            out.append({"label": src["label"], "kind": src["kind"], "insee": src.get("insee"),
                        "postcode": src.get("postcode") or "", "city": src.get("city"),
                        "lat": loc.get("lat"), "lon": loc.get("lon")})
        return out

    def locate(self, *, insee: str, street_text: str) -> tuple[dict, Precision] | None:
        """``(document source, "address" | "street")`` for an address typed in commune ``insee``."""
        number, rep, street = split_number(street_text)
        body = locate_body(address_key=address_key(insee, street, number, rep) if number else "",
                           street_key=street_key(insee, street))
        if body is None:
            return None
        hits = self._search(body)
        for wanted in _LOCATED:
            for src in hits:
                if src.get("kind") == wanted:
                    return src, wanted
        return None
