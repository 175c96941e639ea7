"""Search fixtures: an index prefix of their own (so that no other test's documents can change a
ranking), the real app on it, and builders of offers / slots validated by the document models."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone

import pytest
from elasticsearch import helpers

from indexer.lifecycle import drop_prefix, setup_indices
from mappings.declarations import DeclarationDoc
from mappings.offers import OfferDoc
from mappings.registry import alias_name
from mappings.slots import SlotDoc
from search_api.query.defaults import DECLARATIONS_CACHE_S

#: Agen town hall area: the search point of the "47000" commune centroid is 44.20281, 0.62558.
AGEN = {"lat": 44.20281, "lon": 0.62558}


class SearchWorld:
    """Writes offers, slots and declarations under the search tests' prefix, refreshed immediately."""

    def __init__(self, es, prefix: str) -> None:
        self.es = es
        self.prefix = prefix

    def alias(self, name: str) -> str:
        return alias_name(self.prefix, name)

    def put(self, name: str, docs: list[dict], *, settle: bool = True) -> None:
        model = {"offers": OfferDoc, "slots": SlotDoc, "declarations": DeclarationDoc}[name]
        actions = []
        for doc in docs:
            checked = model.model_validate(doc).model_dump(mode="json", exclude_none=True)
            actions.append({"_index": self.alias(name), "_id": checked["id"], "_source": checked})
        helpers.bulk(self.es, actions, refresh=True)
        if name == "declarations" and settle:
            # Searches share one read of the declarations for DECLARATIONS_CACHE_S: the documented delay.
            time.sleep(DECLARATIONS_CACHE_S + 0.05)

    def delete(self, name: str, ids: list[str]) -> None:
        helpers.bulk(self.es, ({"_op_type": "delete", "_index": self.alias(name), "_id": i} for i in ids),
                     refresh=True, raise_on_error=False)

    def clear(self) -> None:
        """Delete every document (scan + bulk delete: the minimal distribution has no _delete_by_query)."""
        for name in ("offers", "slots", "declarations"):
            ids = [h["_id"] for h in helpers.scan(self.es, index=self.alias(name), query={"query": {"match_all": {}}},
                                                   _source=False)]
            if ids:
                self.delete(name, ids)
                if name == "declarations":
                    time.sleep(DECLARATIONS_CACHE_S + 0.05)   # searches may still share the previous read


@pytest.fixture(scope="package")
def search_prefix(test_prefix: str) -> str:
    return f"{test_prefix}-srch{uuid.uuid4().hex[:4]}"


@pytest.fixture(scope="package")
def search_settings(settings, search_prefix):
    return settings.model_copy(update={"index_prefix": search_prefix})


@pytest.fixture(scope="package")
def world(es, search_prefix) -> Iterator[SearchWorld]:
    setup_indices(es, prefix=search_prefix)
    yield SearchWorld(es, search_prefix)
    drop_prefix(es, prefix=search_prefix)


@pytest.fixture(scope="package")
def search_api(search_settings, es, world):
    from fastapi.testclient import TestClient

    from search_api.app import create_app

    with TestClient(create_app(search_settings, es=es)) as client:
        yield client


def offer(offer_id: str, *, name: str, lat: float, lon: float, kind: str = "ps", national_id: str | None = None,
          specialties: tuple[str, ...] = ("SM54",), line: str = "", postcode: str = "47000", city: str = "AGEN",
          phone: str | None = None, sector: str | None = None, accepts_beyond: bool = False,
          beyond_phone: str | None = None, cpts_finess: str | None = None, cpts_name: str | None = None,
          finess: str | None = None, geo_precision: str = "address", sos_hours: str | None = None) -> dict:
    """An offer document as the directory writes it."""
    from sas_core.text import fold

    return {
        "id": offer_id, "kind": kind, "national_id": national_id, "name": name, "name_folded": fold(name),
        "specialties": list(specialties),
        "specialty_labels": ["Médecine générale" if s == "SM54" else s for s in specialties],
        "address": {"line": line or None, "postcode": postcode, "city": city,
                    "text": f"{line}, {postcode} {city}" if line else f"{postcode} {city}"},
        "departement": postcode[:2], "territory": f"SAS-{postcode[:2]}",
        "location": {"lat": lat, "lon": lon}, "geo_precision": geo_precision,
        "phones": [phone] if phone else [],
        "structure": {"finess": finess},
        "convention_sector": sector,
        "sas": {"participates": True, "accepts_beyond": accepts_beyond, "beyond_phone": beyond_phone,
                "cpts_finess": cpts_finess, "cpts_name": cpts_name},
        "sos": {"association_name": name, "opening_hours": sos_hours} if kind == "sos" else None,
        "source": "rpps" if kind == "ps" else "finess",
    }


def slot(slot_id: str, *, of: dict, start: datetime, minutes: int = 30, types: tuple[str, ...] = ("PUBLIC",),
         modes: tuple[str, ...] = ("AMB",), specialties: tuple[str, ...] | None = None, bookable: bool = True,
         booking_url: str | None = "https://exemple.com/rdv/com/", motive: str | None = None,
         cpts: list[dict] | None = None, sos: dict | None = None, hidden: bool = False,
         stale_since: datetime | None = None, capacity: int | None = None, vendor: str = "editeur-a") -> dict:
    """A slot document as the harvester writes it (offer fields copied onto the slot)."""
    end = start + timedelta(minutes=minutes)
    return {
        "id": slot_id, "source": "vendor", "vendor": vendor, "vendor_slot_id": slot_id.split(":")[-1],
        "practitioner_national_id": of.get("national_id"), "offer_id": of["id"], "offer_kind": of["kind"],
        "convention_sector": of.get("convention_sector"),
        "start": start.isoformat(), "end": end.isoformat(),
        "date_range": {"gte": start.isoformat(), "lt": end.isoformat()},
        "types": list(types), "modes": list(modes), "motive": motive,
        "specialties": list(specialties if specialties is not None else of["specialties"]),
        "bookable": bookable, "booking_url": booking_url if bookable else None, "capacity": capacity,
        "cpts": cpts or [], "sos": sos, "location": of["location"], "departement": of.get("departement"),
        "territory": of.get("territory"), "hidden": hidden,
        "harvested_at": datetime.now(timezone.utc).isoformat(),
        "stale_since": stale_since.isoformat() if stale_since else None,
    }


@pytest.fixture
def clean(world) -> SearchWorld:
    """The world, emptied before the test."""
    world.clear()
    return world


@pytest.fixture
def at() -> Callable[..., datetime]:
    """``at(hours=2)``: a moment relative to now (rounded to the minute), for slot starts."""
    base = datetime.now(timezone.utc).replace(second=0, microsecond=0)

    def make(**delta) -> datetime:
        return base + timedelta(**delta)

    return make
