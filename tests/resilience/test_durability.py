"""``kill -9`` of Elasticsearch while operators book and effecteurs publish: nothing acknowledged is lost.

The platform owns state that no harvest can rebuild — a claim on a vendor slot (``hidden``), the
``booked_count`` of an own-agenda slot, the own-agenda slots themselves — and it lives in the ``slots``
index. With ``translog.durability: async`` an acknowledged write sat in the node's memory for up to
``sync_interval`` (5 s): a crash lost claims (slots bookable again), counters (double bookings) and
published slots that had been answered 201. The index now syncs its translog before answering.

One node of the module's own (never the shared one). While three kinds of writers run against the real
API — vendor bookings (redirect mode), own-agenda bookings, agenda publications — a full harvest of a
second vendor ends ``success`` and the node is killed with SIGKILL right after. Once it is back:

* every acknowledged publication is there, every acknowledged vendor claim still hides its slot and its
  orientation exists, every own-agenda slot counts at least its acknowledged bookings;
* booking the own-agenda slots again never exceeds their capacity (no double booking);
* every slot the ``success`` harvest run counted as written is there.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone

import httpx
import pytest
import yaml
from elasticsearch import helpers

from bench.common import free_port
from indexer.harvest import run_harvest
from indexer.lifecycle import drop_prefix, setup_indices
from mappings.registry import alias_name
from sas_core import local_es
from simulator.app import Simulator
from simulator.roster import rosters_from_offers
from simulator.server import SimulatorThread
from tests.integration.workflow.conftest import bordeaux_offer
from tests.resilience.conftest import ApiServer

BOOKED_VENDOR = "medilib"     # harvested first; its slots are booked (redirect mode) during the crash window
SWEPT_VENDOR = "agendax"      # harvested during the crash window; the node dies right after its run
CAPACITY = 3                  # places of each own-agenda time range


def _all(es, prefix: str, name: str, query: dict | None = None) -> dict[str, dict]:
    alias = alias_name(prefix, name)
    es.indices.refresh(index=alias)
    return {hit["_id"]: hit["_source"]
            for hit in helpers.scan(es, index=alias, query={"query": query or {"match_all": {}}})}


class Writers:
    """Background writers against the real API; each keeps only what was acknowledged (2xx)."""

    def __init__(self, api_url: str, *, regulator: dict, effecteur: dict, vendor_slots: list[str],
                 agenda_slots: list[str], agenda_offer: str) -> None:
        self.api_url = api_url
        self.regulator, self.effecteur = regulator, effecteur
        self.vendor_slots, self.agenda_slots, self.agenda_offer = list(vendor_slots), list(agenda_slots), agenda_offer
        self.claims: dict[str, str] = {}            # vendor slot id → orientation id (201)
        self.agenda_bookings: Counter[str] = Counter()  # own-agenda slot id → acknowledged bookings
        self.agenda_orientations: list[str] = []
        self.published: list[str] = []              # own-agenda slot ids answered 201
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=fn, daemon=True)
                        for fn in (self._book_vendor, self._book_agenda, self._publish)]

    def _post(self, client: httpx.Client, path: str, body: dict, headers: dict) -> httpx.Response | None:
        try:
            return client.post(path, json=body, headers=headers)
        except httpx.HTTPError:
            return None  # the node (hence the API) is gone: not acknowledged

    def _book_vendor(self) -> None:
        with httpx.Client(base_url=self.api_url, timeout=10) as client:
            for slot_id in self.vendor_slots:
                if self.stop.is_set():
                    return
                answer = self._post(client, "/v1/bookings", {"slot_id": slot_id},
                                    {**self.regulator, "Idempotency-Key": f"v-{uuid.uuid4()}"})
                if answer is not None and answer.status_code == 201:
                    self.claims[slot_id] = answer.json()["orientation"]["id"]

    def _book_agenda(self) -> None:
        with httpx.Client(base_url=self.api_url, timeout=10) as client:
            while not self.stop.is_set():
                for slot_id in self.agenda_slots:
                    if self.stop.is_set():
                        return
                    answer = self._post(client, "/v1/bookings", {"slot_id": slot_id},
                                        {**self.regulator, "Idempotency-Key": f"a-{uuid.uuid4()}"})
                    if answer is not None and answer.status_code == 201:
                        self.agenda_bookings[slot_id] += 1
                        self.agenda_orientations.append(answer.json()["orientation"]["id"])
                time.sleep(0.05)

    def _publish(self) -> None:
        start = (datetime.now(timezone.utc) + timedelta(hours=30)).replace(second=0, microsecond=0)
        with httpx.Client(base_url=self.api_url, timeout=10) as client:
            number = 0
            while not self.stop.is_set():
                begins = start + timedelta(minutes=20 * number)
                number += 1
                answer = self._post(client, "/v1/agenda/slots", {"offer_id": self.agenda_offer, "items": [
                    {"start": begins.isoformat(), "end": (begins + timedelta(minutes=20)).isoformat()}]},
                    self.effecteur)
                if answer is not None and answer.status_code == 201:
                    self.published += [slot["id"] for slot in answer.json()["created"]]

    def __enter__(self) -> Writers:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)


@pytest.mark.timeout(420)
def test_kill_9_during_bookings_publications_and_a_sweep_loses_nothing_acknowledged(own_node, test_prefix, token_for,
                                                                                     tmp_path):
    node, es = own_node
    t0 = time.monotonic()

    def mark(what: str) -> None:
        print(f"[{time.monotonic() - t0:6.1f}s] {what}", flush=True)

    prefix = f"{test_prefix}-dur{uuid.uuid4().hex[:4]}"
    setup_indices(es, prefix=prefix)
    vendor_offers = [bordeaux_offer(i, vendor=BOOKED_VENDOR) for i in range(4)] + \
                    [bordeaux_offer(10 + i, vendor=SWEPT_VENDOR) for i in range(4)]
    own = bordeaux_offer(20, vendor=None)
    helpers.bulk(es, ({"_index": alias_name(prefix, "offers"), "_id": o["id"], "_source": o}
                      for o in [*vendor_offers, own]), refresh=True)

    port = free_port()
    simulator = Simulator(rosters_from_offers(vendor_offers), public_url=f"http://127.0.0.1:{port}", taken_share=0.0)
    vendors_path = tmp_path / "vendors.yaml"
    vendors_path.write_text(yaml.safe_dump({
        "defaults": {"timeout_s": 5, "max_attempts": 1, "rate_limit_per_s": 500},
        "vendors": [{"name": v, "base_url": f"http://127.0.0.1:{port}/{v}/fhir", "use_cases": ["ps"]}
                    for v in (BOOKED_VENDOR, SWEPT_VENDOR)]}))
    app_settings = node.model_copy(update={"index_prefix": prefix, "vendors_file": vendors_path,
                                           "booking_appointment_vendors": []})
    regulator = token_for("regulator", territories=["SAS-33"], sub="reg-durability", name="Pauline RICART",
                          national_id="3620100057/70326SR")
    effecteur = token_for("effecteur", national_id=own["national_id"])

    with SimulatorThread(simulator, port=port), ApiServer(app_settings, es) as api:
        first = run_harvest(es=es, settings=app_settings, vendor=BOOKED_VENDOR, mode="full")
        assert [run["status"] for run in first] == ["success"], first
        now = datetime.now(timezone.utc)
        vendor_slots = sorted(slot_id for slot_id, doc
                              in _all(es, prefix, "slots", {"term": {"vendor": BOOKED_VENDOR}}).items()
                              if doc.get("bookable") and doc.get("booking_url")
                              and datetime.fromisoformat(doc["start"]) > now + timedelta(hours=1))
        assert len(vendor_slots) >= 100, len(vendor_slots)

        # Own-agenda time ranges of CAPACITY places, published through the API before the crash window.
        ranges = []
        with httpx.Client(base_url=api.url, timeout=10) as client:
            begins = (now + timedelta(hours=4)).replace(second=0, microsecond=0)
            for number in range(4):
                start = begins + timedelta(hours=number)
                answer = client.post("/v1/agenda/slots", headers=effecteur, json={"offer_id": own["id"], "items": [
                    {"start": start.isoformat(), "end": (start + timedelta(minutes=50)).isoformat(),
                     "capacity": CAPACITY}]})
                assert answer.status_code == 201, answer.text
                ranges.append(answer.json()["created"][0]["id"])

        with Writers(api.url, regulator=regulator, effecteur=effecteur, vendor_slots=vendor_slots,
                     agenda_slots=ranges, agenda_offer=own["id"]) as writers:
            time.sleep(1.5)
            swept = run_harvest(es=es, settings=app_settings, vendor=SWEPT_VENDOR, mode="full")
            assert [run["status"] for run in swept] == ["success"], swept
            written = sum(run["upserted"] for run in swept)
            time.sleep(0.3)
            pid = local_es.status(node).managed_pid
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            mark(f"SIGKILL after {len(writers.claims)} claims, {sum(writers.agenda_bookings.values())} agenda "
                 f"bookings, {len(writers.published)} publications, a sweep of {written} slots")
        while local_es.status(node).managed_pid is not None:
            time.sleep(0.2)
        assert writers.claims and writers.published and writers.agenda_bookings, "the crash window saw no write"

        local_es.start(node, timeout_s=180)
        es.cluster.health(index=alias_name(prefix, "slots"), wait_for_status="yellow", timeout="60s")
        mark("node back")

        slots = _all(es, prefix, "slots")
        orientations = _all(es, prefix, "orientations")
        lost_publications = [slot_id for slot_id in writers.published if slot_id not in slots]
        lost_claims = [slot_id for slot_id, orientation_id in writers.claims.items()
                       if not (slots.get(slot_id) or {}).get("hidden") or orientation_id not in orientations]
        short_counts = {slot_id: (count, slots[slot_id].get("booked_count"))
                        for slot_id, count in writers.agenda_bookings.items()
                        if (slots[slot_id].get("booked_count") or 0) < count}
        lost_agenda_orientations = [o for o in writers.agenda_orientations if o not in orientations]
        swept_now = sum(1 for doc in slots.values() if doc.get("vendor") == SWEPT_VENDOR)
        losses = {"publications": len(lost_publications), "claims": len(lost_claims), "counters": len(short_counts),
                  "agenda orientations": len(lost_agenda_orientations), "swept slots": max(0, written - swept_now)}
        mark(f"lost after the crash: {losses} (of {len(writers.published)} publications, {len(writers.claims)} "
             f"claims, {len(writers.agenda_bookings)} counters, {written} swept slots)")
        assert losses == dict.fromkeys(losses, 0), (lost_publications, lost_claims, short_counts)

        # No double booking: after the crash the ranges take only what their acknowledged bookings left.
        with httpx.Client(base_url=api.url, timeout=10) as client:
            for slot_id in ranges:
                extra = 0
                for _ in range(CAPACITY + 1):
                    answer = client.post("/v1/bookings", json={"slot_id": slot_id},
                                         headers={**regulator, "Idempotency-Key": f"after-{uuid.uuid4()}"})
                    if answer.status_code != 201:
                        assert answer.status_code == 409, answer.text
                        break
                    extra += 1
                assert writers.agenda_bookings[slot_id] + extra <= CAPACITY, (
                    slot_id, writers.agenda_bookings[slot_id], extra)
    drop_prefix(es, prefix=prefix)
