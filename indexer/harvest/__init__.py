"""Vendor harvest: pull every vendor's free slots (SAS FHIR searches) into the slots index.

One run = one vendor, one window (``incremental``: the next 48 h; ``full``: the next 7 days). Stages:

1. **roster** — who to ask for: the vendors file's ``roster`` (``SAS_VENDORS_FILE``) plus the offers whose
   ``sas.vendor`` names the vendor (SOS: association SIRETs), and every offer of those practitioners, to
   match places.
2. **existing** — ids, roster key, content hash and staleness of the vendor's indexed slots in the window
   (one scan, doc values only).
3. **fetch** — the searches (25 national ids, or 10 SOS SIRETs sent as ``3`` + SIRET, per request), concurrently
   (``connectors.vendors.client``); SOS records come back with the bare SIRET the directory holds.
4. **map** — bundle → ``SlotRecord`` (``connectors.vendors.mapping``), bad resources counted by reason.
5. **place** — each record is matched to a directory offer (national id + postcode / city + street);
   an unknown place becomes a vendor-only offer, geocoded with the directory's geocoder.
6. **write** — per batch that answered: new slots are ``create``d, changed ones partially ``update``d,
   unchanged ones skipped (their ``content_hash`` matches), and the batch's indexed slots of the window
   that did not come back are deleted by id (taken or cancelled at the vendor). Per batch that failed:
   nothing is deleted; its slots of the window get ``stale_since`` (when not already set).
   Deletions are held back until every batch answered, then checked against the mass-deletion guard
   (below) and written.
7. **report** — one ``harvest_runs`` document.

Why the content hash rather than ``doc_as_upsert`` no-ops: an unchanged slot then costs nothing at all
in Elasticsearch (no write, no version bump), and ``harvested_at`` can honestly say when the content was
last written. When the vendor last confirmed a slot is the time of the vendor's last successful run
(``harvest_runs``) — a per-slot "last seen" would rewrite every slot on every run.

Mass-deletion guard: a vendor answering ``200`` with an empty searchset (a vendor-side bug) looks exactly
like "every slot was taken". Deletions are therefore trusted only when they look like business: a batch
that would delete more than ``harvest_mass_delete_share`` of the slots it had indexed (from
``harvest_mass_delete_min`` deletions on), or whose own ``Bundle.total`` says more slots matched than it
sent, keeps those slots and marks them stale instead; so does a whole run over the same limits. The run is
then ``partial``, with ``deletions_held`` and ``alerts`` (the reasons) in its document, on the
harvest-health page and in ``/metrics``. Stale slots leave the search after ``stale_after_s`` anyway; a
later healthy answer clears them or deletes the ones really gone.

Modules: ``harvester`` (the run and its stages), ``window``, ``offer_book`` (roster and place matching),
``vendor_places``, ``existing_slots``, ``slot_documents`` (byte-spliced documents), ``run_stats``,
``report`` (the run's document and metrics), ``gc_tuning``; bulk writes go through ``indexer.bulk``
and run documents through ``indexer.run_records``.
"""

from indexer.harvest.gc_tuning import tune_gc
from indexer.harvest.harvester import Harvester, iter_vendor_names, run_harvest
from indexer.harvest.offer_book import OfferBook, load_offer_book
from indexer.harvest.report import observe_run, run_document
from indexer.harvest.run_stats import RunStats
from indexer.harvest.slot_documents import (
    _slot_static,
    content_hash,
    slot_document,
    slot_document_bytes,
    static_part_bytes,
)
from indexer.harvest.vendor_places import PlaceMaker, build_geocoder
from indexer.harvest.window import Mode, Window
from indexer.run_records import mark_interrupted_runs
from sas_core.clock import utcnow

__all__ = [
    "Harvester", "Mode", "OfferBook", "PlaceMaker", "RunStats", "Window", "_slot_static",
    "build_geocoder", "content_hash", "iter_vendor_names", "load_offer_book", "mark_interrupted_runs",
    "observe_run", "run_document", "run_harvest", "slot_document", "slot_document_bytes", "static_part_bytes",
    "tune_gc", "utcnow",
]
