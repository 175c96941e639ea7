"""The offers a vendor's slots can belong to: the roster to ask the vendor for, and the matching of each
slot's place to a directory offer (national id or SOS SIRET, then postcode / city, street, name)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence

from elasticsearch import Elasticsearch

from connectors.vendors.config import VendorConfig
from connectors.vendors.mapping import SlotRecord
from indexer.scroll import scroll_pages
from mappings.registry import alias_name
from sas_core.structure_ids import siret_bare, siret_wire
from sas_core.text import fold

_OFFER_FIELDS = ["id", "kind", "national_id", "name", "name_folded", "last_name", "first_name", "specialties",
                 "address", "departement", "territory", "location", "sas.vendor", "sos", "convention_sector"]


def _line_tokens(line: str | None) -> set[str]:
    return set(fold(line).split()) if line else set()


class OfferBook:
    """The offers a vendor's slots can belong to, indexed for matching. ``offers`` may be a function that
    reads them: then they are read by ``load``, or when a slot is first matched (a steady poll maps none:
    its runs read no offer at all)."""

    def __init__(self, offers: Iterable[dict] | Callable[[], Iterable[dict]]) -> None:
        self.by_national_id: dict[str, list[dict]] = defaultdict(list)
        self.by_siret: dict[str, list[dict]] = defaultdict(list)
        self._cache: dict[tuple, dict | None] = {}
        self._pending: Callable[[], Iterable[dict]] | None = None
        if callable(offers):
            self._pending = offers
        else:
            for offer in offers:
                self._index(offer)

    @property
    def loaded(self) -> bool:
        return self._pending is None

    def load(self) -> None:
        """Read the offers now, if they are not yet (Elasticsearch: off the event loop, callers see to it)."""
        pending, self._pending = self._pending, None
        if pending is not None:
            for offer in pending():
                self._index(offer)

    def _index(self, offer: dict) -> None:
        if offer.get("national_id"):
            self.by_national_id[offer["national_id"]].append(offer)
        # Keyed by the bare SIRET, as SOS records are (a place written with ``3`` + SIRET still matches).
        siret = siret_bare((offer.get("sos") or {}).get("association_siret"))
        if siret:
            self.by_siret[siret].append(offer)

    def add(self, offer: dict) -> None:
        self.load()
        self._index(offer)
        self._cache.clear()

    def match(self, record: SlotRecord) -> dict | None:
        """The offer of ``record``'s place, or ``None`` when the directory does not know that place."""
        self.load()
        place = record.place
        key = (record.search == "sos", record.roster_key, place.postcode, place.city, place.line, place.name)
        if key in self._cache:
            return self._cache[key]
        if record.search == "sos":
            candidates = self.by_siret.get(record.roster_key, [])
        else:
            candidates = self.by_national_id.get(record.practitioner_national_id or "", [])
        found = _best_place(candidates, postcode=place.postcode, city=place.city, line=place.line, name=place.name)
        self._cache[key] = found
        return found


def _house_number(line: str | None) -> str | None:
    first = fold(line).split(" ", 1)[0] if line else ""
    return first if first[:1].isdigit() else None


def _best_place(candidates: Sequence[dict], *, postcode: str | None, city: str | None, line: str | None,
                name: str | None) -> dict | None:
    """Same postcode (or same folded city when either has no postcode), then the closest street line
    (token overlap), then the name (SOS places). ``None`` when no candidate is in the same town."""
    city_folded = fold(city)
    same_town: list[dict] = []
    for offer in candidates:
        address = offer.get("address") or {}
        if postcode and address.get("postcode"):
            if address["postcode"] == postcode:
                same_town.append(offer)
        elif city_folded and (address.get("city_folded") or fold(address.get("city"))) == city_folded:
            same_town.append(offer)
    if not same_town:
        return None
    if len(same_town) == 1:
        return same_town[0]
    wanted = _line_tokens(line) | _line_tokens(name)
    number = _house_number(line)

    def score(offer: dict) -> tuple[bool, float, str]:
        offer_line = (offer.get("address") or {}).get("line")
        tokens = _line_tokens(offer_line) | _line_tokens(offer.get("name"))
        overlap = len(wanted & tokens) / max(len(wanted | tokens), 1)
        return number is not None and _house_number(offer_line) == number, overlap, str(offer.get("id"))

    return max(same_town, key=score)


def load_offer_book(es: Elasticsearch, *, prefix: str, vendor: VendorConfig) -> tuple[list[str], list[str], OfferBook]:
    """(practitioner ids, SOS association SIRETs, offers) of ``vendor``: the vendors file's rosters plus
    the offers whose ``sas.vendor`` names it; the book holds every offer of those ids."""
    offers_alias = alias_name(prefix, "offers")
    practitioner_ids = list(vendor.practitioner_ids)
    sos_ids = list(vendor.sos_ids)
    marked = (hit for page in scroll_pages(es, index=offers_alias, query={"term": {"sas.vendor": vendor.name}},
                                           page_size=5000, hit_keys=("_source",),
                                           source=["kind", "national_id", "sos.association_siret"])
              for hit in page)
    for hit in marked:
        source = hit["_source"]
        if source.get("kind") == "sos":
            siret = siret_bare((source.get("sos") or {}).get("association_siret"))
            if siret and "sos" in vendor.use_cases:
                sos_ids.append(siret)
        elif source.get("national_id") and vendor.practitioner_search:
            practitioner_ids.append(source["national_id"])
    practitioner_ids = list(dict.fromkeys(practitioner_ids)) if vendor.practitioner_search else []
    sos_ids = list(dict.fromkeys(sos_ids)) if "sos" in vendor.use_cases else []

    def offers() -> list[dict]:
        found: list[dict] = []
        for field_name, ids in (("national_id", practitioner_ids), ("sos.association_siret", sos_ids)):
            for start in range(0, len(ids), 10_000):
                chunk: list[str | None] = [*ids[start:start + 10_000]]
                if field_name == "sos.association_siret":
                    # Places written in the wire form (vendor-only places of older runs) are found too.
                    chunk += [siret_wire(siret) for siret in chunk]
                for page in scroll_pages(es, index=offers_alias, query={"terms": {field_name: chunk}},
                                         page_size=5000, hit_keys=("_source",), source=_OFFER_FIELDS):
                    found.extend(hit["_source"] for hit in page)
        return found

    return practitioner_ids, sos_ids, OfferBook(offers)

