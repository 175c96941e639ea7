"""Address document: one numbered address of the national address base (BAN), or one street.

Numbered addresses keep the BAN ``id`` as document id (a reload overwrites, never duplicates). Streets
(``kind="street"``, id ``voie-<id_fantoir>``) are written by the loader from the numbers it read, at the
position of the street's middle number: the directory falls back to them when a number is not in the
base, and the operator's address box suggests them before a number is typed. ``street_key`` /
``address_key`` are the normalised match keys of ``connectors.addresses``; ``suggest`` (streets only)
is the accent-folded label (the minimal Elasticsearch has no asciifolding), searched with
``match_bool_prefix`` over its ``index_prefixes``; a typed number is then looked up by ``address_key``
on the streets found, so numbers carry no text field (they are 95 % of the base, and text analysis is
most of the cost of writing a document).
"""

from __future__ import annotations

from typing import Literal

from mappings.common import Doc, GeoPoint


class AddressDoc(Doc):
    id: str
    kind: Literal["address", "street"]
    number: str | None = None          # "12" (streets: none)
    rep: str | None = None             # "bis"
    street: str                        # "Rue Sainte-Catherine"
    postcode: str | None = None
    insee: str
    city: str
    old_insee: str | None = None       # the former commune (communes nouvelles)
    departement: str | None = None
    label: str                         # "12 Rue Sainte-Catherine 33000 Bordeaux"
    street_key: str
    address_key: str | None = None
    suggest: str | None = None         # streets: folded label (numbers are found through their street)
    location: GeoPoint
    type_position: str | None = None
    certified: bool | None = None
    numbers: int | None = None         # streets: how many numbers the base has on it
