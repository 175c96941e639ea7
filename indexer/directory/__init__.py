"""Directory load: national files → offer documents in the ``offers`` index.

The pipeline is an ordered list of small generator stages, each counting what it skips, with a reason,
in the run summary::

    read (connectors) → triage (rejections / remarks counted) → geocode → documents → dedupe
      → sample validation → bulk actions → bulk (``indexer.bulk``, threads: index, update + doc_as_upsert)

Idempotence: each offer has a stable id (``ps-<national id>-<structure technical id>``,
``cpts-<FINESS>``, ``sos-<technical id>``…) and a fingerprint of its content (``content_hash``). A
**full** load first reads the fingerprints already in the index (a doc-values scan), sends only the
documents that are new or changed, and then deletes by id the offers of the loaded sources that the files
no longer have — except those a rejected line names (by national id or place), and never more than
``SAS_DIRECTORY_MAX_DELETE_SHARE`` of them (beyond, the load fails and deletes nothing); the harvested
slots of deleted offers go with them. A second load of the same files writes nothing and every
``_version`` stays as it was. An **incremental** load never deletes and writes ``update`` +
``doc_as_upsert``, for which Elasticsearch itself answers ``noop`` when nothing changed. No "loaded at"
time goes in the document for that reason; the extraction date of the file is the document's
``source_updated_at``. The index refresh is switched off during a full load and restored after. Each run
is recorded as a ``harvest_runs`` document (``kind="directory"``).

Memory: files are streamed line by line; what a run holds is one entry per offer (the ids it produced,
and on a full load the fingerprints read from the index), about 250 bytes each — some 500 MB for the
two million lines of the real national extraction, 80 MB for the 300,000-place benchmark.

SAS participation is not in the national files: it is applied from the companion file when one is given
(``--participation``); without it the ``sas`` block of existing offers is left untouched (partial
update), since in production it comes from the platform's own registrations.

Modules: ``sources`` (the national files, the FHIR API, the scheduled refresh), ``pipeline``
(``run_pipeline``), ``stages``, ``offer_documents``, ``offer_ids``, ``offers_index`` (fingerprints read,
bulk writes, deletions), ``run_context``, ``summary`` (``LoadSummary`` and the run document); bulk writes
go through ``indexer.bulk``, run documents through ``indexer.run_records``.
"""

from indexer.directory.offer_ids import is_sos_place, practice_offer_id, sos_offer_id
from indexer.directory.pipeline import build_directory_geocoder, run_pipeline
from indexer.directory.sources import load_directory, load_directory_fhir, refresh_directory
from indexer.directory.summary import LoadSummary

__all__ = [
    "LoadSummary", "build_directory_geocoder", "is_sos_place", "load_directory", "load_directory_fhir",
    "practice_offer_id", "refresh_directory", "run_pipeline", "sos_offer_id",
]
