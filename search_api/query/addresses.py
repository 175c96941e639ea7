"""Address-box queries over the ``addresses`` index (pure: text in, request body out).

The minimal Elasticsearch has no asciifolding, so the typed text is folded in Python by the same
function that folded the indexed labels (``connectors.addresses.suggest_text``), and matched with
``match_bool_prefix`` — every word but the last as a whole word, the last as a prefix served by the
field's ``index_prefixes`` — with ``operator: and``, so that each typed word narrows the list.
"""

from __future__ import annotations

import re

from connectors.addresses import suggest_text

_LEADING_NUMBER = re.compile(r"^\d{1,5}\b")
SUGGEST_SOURCE = ["kind", "label", "postcode", "insee", "city", "location"]
#: Below this many characters a prefix matches too much to be useful (the communes list still answers).
MIN_CHARS = 3


def suggest_body(text: str, *, limit: int) -> dict | None:
    """Suggestions for what the operator typed; ``None`` when there is nothing to ask.

    A typed number asks for numbered addresses (``12 rue sainte cath`` → ``12 Rue Sainte-Catherine…``);
    without one, streets (one per street and commune, not every number of it)."""
    folded = suggest_text(text)
    if len(folded.replace(" ", "")) < MIN_CHARS or limit <= 0:
        return None
    kind = "address" if _LEADING_NUMBER.match(folded) else "street"
    return {
        "size": limit,
        "track_total_hits": False,
        "query": {"bool": {
            "must": [{"match_bool_prefix": {"suggest": {"query": folded, "operator": "and"}}}],
            "filter": [{"term": {"kind": kind}}],
        }},
        "_source": SUGGEST_SOURCE,
    }


def locate_body(*, address_key: str, street_key: str) -> dict | None:
    """The numbered address (``address_key``) or else the street (``street_key``) a typed address names."""
    should = []
    if address_key:
        should.append({"bool": {"filter": [{"term": {"address_key": address_key}}, {"term": {"kind": "address"}}]}})
    if street_key:
        should.append({"bool": {"filter": [{"term": {"street_key": street_key}}, {"term": {"kind": "street"}}]}})
    if not should:
        return None
    return {"size": 4, "track_total_hits": False, "query": {"bool": {"should": should, "minimum_should_match": 1}},
            "_source": SUGGEST_SOURCE}
