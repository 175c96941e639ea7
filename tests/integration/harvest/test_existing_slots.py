"""The run's view of what is already indexed: every slot of the vendor in the window, over several scroll
pages, with its roster key, content hash and staleness, and the scroll freed afterwards."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from elasticsearch import helpers

from connectors.vendors.config import VendorConfig
from indexer.harvest.existing_slots import scan_existing
from indexer.harvest.window import Window
from mappings.common import GeoPoint
from mappings.registry import alias_name
from mappings.slots import DateRange, SlotDoc, SlotPlace

NOW = datetime.now(timezone.utc).replace(microsecond=0)


def _vendor_slot(n: int, *, vendor: str, hours_ahead: float, stale: bool = False) -> dict:
    start = NOW + timedelta(hours=hours_ahead)
    end = start + timedelta(minutes=15)
    key = f"81000000{n % 4:04d}"   # four practitioners share the slots
    return SlotDoc(
        id=f"{vendor}:{n}", source="vendor", vendor=vendor, use_case="ps", roster_key=key,
        practitioner_national_id=key, practitioner_name="Claire MARTIN", offer_id=f"offer-{key}", offer_kind="ps",
        start=start, end=end, date_range=DateRange(gte=start, lt=end), duration_min=15, types=["SNP"],
        modes=["AMB"], specialties=["SM54"], bookable=True, place=SlotPlace(address="3 cours Victor Hugo, 47000 Agen"),
        location=GeoPoint(lat=44.2033, lon=0.6163), departement="47", territory="SAS-47", name_folded="claire martin",
        content_hash=f"hash-{n}", stale_since=NOW - timedelta(minutes=5) if stale else None,
    ).model_dump(mode="json", exclude_none=True)


def _open_scrolls(es) -> int:
    nodes = es.nodes.stats(metric="indices", index_metric="search")["nodes"]
    return sum(node["indices"]["search"]["scroll_current"] for node in nodes.values())


@pytest.mark.parametrize("page_size", [7, 10_000])
def test_every_slot_of_the_window_over_several_pages(es, indices, settings, page_size):
    vendor = f"scanvendor{page_size}"
    inside = [_vendor_slot(n, vendor=vendor, hours_ahead=1 + n / 10, stale=n % 5 == 0) for n in range(23)]
    elsewhere = [_vendor_slot(100, vendor=vendor, hours_ahead=80),          # after the window
                 _vendor_slot(101, vendor=f"{vendor}other", hours_ahead=2)]  # another vendor
    alias = alias_name(settings.index_prefix, "slots")
    helpers.bulk(es, ({"_index": alias, "_id": d["id"], "_source": d} for d in inside + elsewhere), refresh=True)
    window = Window("incremental", NOW, NOW + timedelta(hours=48))
    scrolls_before = _open_scrolls(es)

    existing = scan_existing(es, slots_alias=alias, vendor=VendorConfig(name=vendor, base_url="http://127.0.0.1:9/"),
                             window=window, now=NOW, page_size=page_size)

    assert set(existing.by_id) == {d["id"] for d in inside}
    for doc in inside:
        start_ms = int(datetime.fromisoformat(doc["start"]).timestamp() * 1000)
        assert existing.by_id[doc["id"]] == (doc["roster_key"], doc["content_hash"], "stale_since" in doc, start_ms)
    assert {key: len(ids) for key, ids in existing.by_key.items()} == {f"81000000{k:04d}": 6 if k < 3 else 5
                                                                      for k in range(4)}
    assert existing.expired_claims == set()
    assert _open_scrolls(es) == scrolls_before   # the scroll was cleared, not left to expire
