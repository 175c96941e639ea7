"""Address-box queries over the ``addresses`` index (pure: text in, request body out).

The minimal Elasticsearch has no asciifolding, so the typed text is folded in Python by the same
function that folded the indexed labels (``connectors.addresses.suggest_text``), and matched with
``match_bool_prefix`` — every word but the last as a whole word, the last as a prefix served by the
field's ``index_prefixes`` — with ``operator: and``, so that each typed word narrows the list. Only
streets carry that text: a typed number is looked up by key on the streets found (``12`` +
``33063|rue sainte catherine``).
"""

from __future__ import annotations

from connectors.addresses import suggest_text
from sas_core.text import fold

SUGGEST_SOURCE = ["kind", "label", "postcode", "insee", "city", "location", "street_key", "address_key"]
#: Below this many characters a prefix matches too much to be useful (the communes list still answers).
MIN_CHARS = 3


def suggest_body(text: str, *, limit: int) -> dict | None:
    """Streets matching what the operator typed (the street part: a leading number is looked up on the
    streets found, see ``numbers_body``); ``None`` when there is nothing to ask."""
    folded = suggest_text(text)
    # Counted on what was typed ("r" expands to "rue", still one character typed).
    if len(fold(text).replace(" ", "")) < MIN_CHARS or not folded or limit <= 0:
        return None
    return {
        "size": limit,
        "track_total_hits": False,
        "query": {"bool": {
            "must": [{"match_bool_prefix": {"suggest": {"query": folded, "operator": "and"}}}],
            "filter": [{"term": {"kind": "street"}}],
        }},
        "_source": SUGGEST_SOURCE,
    }


def numbers_body(address_keys: list[str]) -> dict | None:
    """The numbered addresses of those keys (``<street key>|<number>``), for the streets suggested."""
    if not address_keys:
        return None
    return {"size": len(address_keys), "track_total_hits": False,
            "query": {"bool": {"filter": [{"terms": {"address_key": address_keys}}, {"term": {"kind": "address"}}]}},
            "_source": SUGGEST_SOURCE}


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
