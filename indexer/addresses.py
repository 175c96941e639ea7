"""BAN address files → the ``addresses`` index, and the look-ups the directory load makes in it.

Load: ``read_ban`` (connectors) → documents → ``index`` actions (``indexer.bulk``, on several threads).
Streaming: one line becomes one action sent in chunks; what the run holds is the numbers of the commune
being read (the BAN export is sorted by commune, then street), from which each street's own document is written when the
commune ends — ``voie-<id_fantoir>`` at the position of its middle number, so that it lies on the street.
Idempotent: the BAN ``id`` is the document id, the street id is its FANTOIR id, so a reload overwrites the
same documents and never duplicates; the index refresh is off during the load and restored after. The
whole country is about 26 M lines: memory stays flat (a commune at a time), and a load is one
``index`` write per line, the cheapest Elasticsearch offers.

Look-up (``AddressLocator``): the directory load asks for the match keys of a batch of practice places in
one search each for numbers and streets (``terms`` on ``address_key`` / ``street_key``), never one
request per place.
"""

from __future__ import annotations

import logging
import uuid
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson
from elasticsearch import Elasticsearch, helpers

from connectors.addresses import AddressRecord, normalize_street, read_ban, suggest_text
from connectors.directory.records import Rejection
from indexer.bulk import BulkWriter, reason_as_index_error
from indexer.load_summary import FileLoadSummary
from mappings.addresses import AddressDoc
from mappings.registry import alias_name
from sas_core.clock import iso, iso_or_none, utcnow
from sas_core.errors import ConfigurationError, DataQualityError
from sas_core.settings import DirectorySettings, IndicesSettings
from sas_core.text import fold

log = logging.getLogger(__name__)

_street_norm = lru_cache(maxsize=1 << 16)(normalize_street)
_suggest = lru_cache(maxsize=1 << 16)(suggest_text)
_fold = lru_cache(maxsize=1 << 14)(fold)
_VALIDATE_FIRST = 50


@dataclass(kw_only=True)
class AddressLoadSummary(FileLoadSummary):
    """What one BAN load did."""

    files: list[str] = field(default_factory=list)
    addresses: int = 0                  # numbered addresses written
    streets: int = 0                    # street documents written
    deleted: int = 0                    # documents gone from the files (``prune``)

    @property
    def lines_per_s(self) -> float:
        return self.lines_read / self.duration_s

    def to_dict(self) -> dict:
        return {
            "run_id": self.run_id, "status": self.status, "error": self.error, "files": self.files,
            "lines_read": self.lines_read, "addresses": self.addresses, "streets": self.streets,
            "deleted": self.deleted,
            "failed": self.failed, "rejected": self.rejected,
            "rejected_by_reason": self.rejected_by_reason.as_dict(),
            "started_at": iso(self.started_at),
            "ended_at": iso_or_none(self.ended_at),
            "duration_s": round(self.duration_s, 3), "lines_per_s": round(self.lines_per_s, 1),
        }


def _departement(insee: str) -> str:
    return insee[:3] if insee.startswith("97") else insee[:2]


def _address_doc(r: AddressRecord) -> dict:
    street_norm = _street_norm(r.street)
    city = r.city
    head = f"{r.number} {r.rep}" if r.rep else r.number
    label = f"{head} {r.street} {r.postcode} {city}" if head else f"{r.street} {r.postcode} {city}"
    key_num = f"{r.number}{_rep_word(r.rep)}"
    return {
        "id": r.id,
        "kind": "address",
        "number": r.number or None,
        "rep": r.rep or None,
        "street": r.street,
        "postcode": r.postcode or None,
        "insee": r.insee,
        "city": city,
        "old_insee": r.old_insee or None,
        "departement": _departement(r.insee),
        "label": label,
        "street_key": f"{r.insee}|{street_norm}",
        "address_key": f"{r.insee}|{street_norm}|{key_num}" if r.number else None,
        # No text field on numbers: the box finds streets by text, then their numbers by key (see
        # search_api.addresses); text analysis is most of an index write, and numbers are 95 % of the base.
        "suggest": None,
        "location": {"lat": r.lat, "lon": r.lon},
        "type_position": r.type_position or None,
        "certified": r.certified,
        "numbers": None,
    }


@lru_cache(maxsize=256)
def _rep_word(rep: str) -> str:
    from connectors.addresses import normalize_number

    return normalize_number("1", rep)[1:] if rep else ""


def _street_id(r: AddressRecord, street_norm: str) -> str:
    # The FANTOIR id names the street within its commune; a street without one gets a stable hash.
    if r.fantoir:
        return f"voie-{r.fantoir}"
    return f"voie-{r.insee}-{zlib.crc32(street_norm.encode()):08x}"


def _street_docs(points: dict[str, list]) -> Iterator[dict]:
    """One document per street of a commune, at the position of its middle number."""
    for street_norm, items in points.items():
        items.sort(key=lambda item: (int(item[0]) if item[0].isdigit() else 0))
        _number, r = items[len(items) // 2]
        yield {
            "id": _street_id(r, street_norm),
            "kind": "street",
            "number": None,
            "rep": None,
            "street": r.street,
            "postcode": r.postcode or None,
            "insee": r.insee,
            "city": r.city,
            "old_insee": r.old_insee or None,
            "departement": _departement(r.insee),
            "label": f"{r.street} {r.postcode} {r.city}".strip(),
            "street_key": f"{r.insee}|{street_norm}",
            "address_key": None,
            "suggest": f"{_suggest(r.street)} {r.postcode} {_fold(r.city)}".strip(),
            "location": {"lat": r.lat, "lon": r.lon},
            "type_position": r.type_position or None,
            "certified": None,
            "numbers": len(items),
        }


def _documents(summary: AddressLoadSummary, items: Iterable) -> Iterator[dict]:
    """Address documents as read; each commune's street documents when the commune ends."""
    commune = None
    streets: dict[str, list] = {}
    validated = 0
    for item in items:
        summary.lines_read += 1
        if type(item) is Rejection:
            summary.rejected_by_reason[item.reason] += 1
            continue
        if item.insee != commune:
            yield from _street_docs(streets)
            streets = {}
            commune = item.insee
        doc = _address_doc(item)
        if validated < _VALIDATE_FIRST:
            AddressDoc.model_validate(doc)  # a failure is a bug of the builder: let it surface
            validated += 1
        streets.setdefault(doc["street_key"].split("|", 1)[1], []).append((item.number, item))
        yield doc
    yield from _street_docs(streets)


def _check_alias(es: Elasticsearch, alias: str) -> None:
    if not es.indices.exists_alias(name=alias):
        raise ConfigurationError(f"index alias {alias} does not exist: run `sas setup` first")


def load_addresses(*, settings: DirectorySettings, es: Elasticsearch, paths: Sequence[Path | str],
                   threshold: float | None = None, prune: bool = False,
                   max_delete_share: float | None = None) -> AddressLoadSummary:
    """Load BAN ``adresses-*.csv[.gz]`` files into the ``addresses`` index (see module doc).

    ``prune``: the files are the whole truth of their départements — afterwards, the documents of those
    départements the files no longer have (addresses removed from the base) are deleted by id, unless they
    exceed ``max_delete_share`` (default ``SAS_ADDRESSES_MAX_DELETE_SHARE``) of the département's documents
    (at least ``DELETE_FLOOR`` may always go): beyond, nothing is deleted and the load fails, since a
    truncated export is far likelier than a département losing that many addresses. Pruning holds the
    ids of the départements read (about 70 bytes each: 100 MB for the largest).

    Raises ``DataQualityError`` for a file that is not a BAN export or whose rejected share exceeds
    ``SAS_ADDRESSES_REJECT_THRESHOLD`` (what was read before is kept: addresses are independent of each
    other, and a reload of a corrected file overwrites them; nothing is pruned), ``ConfigurationError``
    without the index.
    """
    alias = alias_name(settings.index_prefix, "addresses")
    _check_alias(es, alias)
    limit = settings.addresses_reject_threshold if threshold is None else threshold
    summary = AddressLoadSummary(run_id=f"addresses-{utcnow():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}",
                                 files=[str(p) for p in paths])
    previous = es.indices.get_settings(index=alias, name="index.refresh_interval").body
    first_index: dict[str, Any] = next(iter(previous.values()), {})
    previous_index = first_index.get("settings", {}).get("index", {})
    restore = {"refresh_interval": previous_index.get("refresh_interval")}
    # No refresh while a whole base is written. The translog stays synced per bulk request (the index's
    # ``request`` durability): a load reported ``success`` is on disk, and the fsync of one bulk request
    # costs ~0.15 ms here (the slots index measured no difference on its cold sweep).
    es.indices.put_settings(index=alias, settings={"index": {"refresh_interval": "-1"}})
    dumps = orjson.dumps

    seen: dict[str, set[str]] = {}

    def documents() -> Iterator[tuple[str, bytes]]:
        for path in paths:
            before_lines, before_rejected = summary.lines_read, summary.rejected
            for doc in _documents(summary, read_ban(path)):
                if prune:
                    seen.setdefault(doc["departement"], set()).add(doc["id"])
                # Nulls are left out of the source: a smaller request for the same document.
                yield doc["id"], dumps({k: v for k, v in doc.items() if v is not None})
            lines = summary.lines_read - before_lines
            rejected = summary.rejected - before_rejected
            if lines and rejected / lines > limit:
                reasons = summary.rejected_by_reason.describe(5)
                raise DataQualityError(f"BAN load refused at {path}: {rejected} of {lines} lines rejected "
                                       f"({rejected / lines:.1%} > {limit:.1%}, SAS_ADDRESSES_REJECT_THRESHOLD); "
                                       f"by reason: {reasons}")

    client = es.options(request_timeout=max(120.0, settings.es_request_timeout_s))
    try:
        # A failed request fails the load; a document Elasticsearch refuses is counted (``failed``,
        # ``index_error:<type>``); streets and numbers are told apart by their ids (``voie-…``).
        with BulkWriter(client, index=alias, chunk=settings.addresses_bulk_chunk,
                        threads=settings.addresses_bulk_threads, max_chunk_bytes=50 * 1024 * 1024,
                        request_failure="raise", create_conflict="fail", missing_delete_ok=False,
                        failure_reason=reason_as_index_error, kind_of_id=_kind_of_id) as writer:
            for doc_id, body in documents():
                writer.index_raw(doc_id, body)
        summary.failed += writer.errors.count
        summary.rejected_by_reason.update(writer.errors)
        summary.streets += writer.kinds["street"]
        summary.addresses += writer.kinds["address"]
        if prune and not summary.failed:
            es.indices.refresh(index=alias)
            _prune(es, alias, seen, summary, settings.addresses_max_delete_share if max_delete_share is None
                   else max_delete_share)
        summary.status = "success" if not summary.failed else "partial"
    except Exception as exc:
        summary.status = "failed"
        summary.error = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        raise
    finally:
        es.indices.put_settings(index=alias, settings={"index": restore})
        es.indices.refresh(index=alias)
        summary.ended_at = utcnow()
    return summary


def _kind_of_id(doc_id: str) -> str:
    return "street" if doc_id.startswith("voie-") else "address"


#: A prune may always delete this many documents of a département, whatever the share.
DELETE_FLOOR = 50


def _prune(es: Elasticsearch, alias: str, seen: dict[str, set[str]], summary: AddressLoadSummary,
           max_share: float) -> None:
    """Delete, per département read, the documents the files no longer have (see ``load_addresses``)."""
    stale_by_dept: dict[str, list[str]] = {}
    for departement, ids in sorted(seen.items()):
        stale: list[str] = []
        total = 0
        # The département's documents by INSEE prefix (2A/2B, 971… included), ids only.
        for hit in helpers.scan(es, index=alias, size=10_000, preserve_order=False,
                                query={"query": {"prefix": {"insee": departement}}, "_source": False}):
            total += 1
            if hit["_id"] not in ids:
                stale.append(hit["_id"])
        cap = max(DELETE_FLOOR, int(max_share * total))
        if len(stale) > cap:
            raise DataQualityError(
                f"BAN prune refused for département {departement}: it would delete {len(stale)} of its {total} "
                f"documents, more than the cap of {cap} (SAS_ADDRESSES_MAX_DELETE_SHARE={max_share:.1%}); "
                f"nothing was deleted — check the file (a truncated export?)")
        stale_by_dept[departement] = stale
    for stale in stale_by_dept.values():
        with BulkWriter(es, index=alias, chunk=5000, request_failure="raise", missing_delete_ok=False) as writer:
            for doc_id in stale:
                writer.delete(doc_id)
        summary.deleted += writer.results["delete:deleted"]
    es.indices.refresh(index=alias)


# --------------------------------------------------------------------------------------------------
# Look-ups for the directory load
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class AddressHit:
    lat: float
    lon: float
    postcode: str | None
    city: str | None


class AddressLocator:
    """Match keys → positions, a batch per search (see module doc)."""

    def __init__(self, es: Elasticsearch, alias: str) -> None:
        self.es = es
        self.alias = alias
        self.searches = 0

    @classmethod
    def for_settings(cls, es: Elasticsearch, settings: DirectorySettings) -> AddressLocator | None:
        """A locator when the index exists and holds addresses; ``None`` otherwise (commune centroids)."""
        if not settings.addresses_geocode_directory:
            return None
        alias = alias_name(settings.index_prefix, "addresses")
        try:
            if not es.indices.exists_alias(name=alias):
                return None
            if es.count(index=alias)["count"] == 0:
                return None
        except Exception as exc:  # noqa: BLE001 - without the address base the load still places communes
            log.warning("addresses index unavailable (%s): practice places stay at commune level", exc)
            return None
        return cls(es, alias)

    def _find(self, field_name: str, kind: str, keys: set[str]) -> dict[str, AddressHit]:
        if not keys:
            return {}
        found: dict[str, AddressHit] = {}
        ordered = sorted(keys)
        for start in range(0, len(ordered), 5000):
            chunk = ordered[start:start + 5000]
            self.searches += 1
            answer = self.es.search(
                index=self.alias, size=min(10_000, 2 * len(chunk)), track_total_hits=False,
                query={"bool": {"filter": [{"terms": {field_name: chunk}}, {"term": {"kind": kind}}]}},
                # A list of fields is a valid ``_source`` (the client's stub only says bool or mapping).
                source=[field_name, "location", "postcode", "city"],  # type: ignore[arg-type]
                filter_path="hits.hits._source",
            )
            for hit in answer.get("hits", {}).get("hits", []):
                src = hit["_source"]
                key = src[field_name]
                if key not in found:
                    loc = src["location"]
                    found[key] = AddressHit(loc["lat"], loc["lon"], src.get("postcode"), src.get("city"))
        return found

    def lookup(self, *, address_keys: set[str], street_keys: set[str]
               ) -> tuple[dict[str, AddressHit], dict[str, AddressHit]]:
        """Numbered addresses by ``address_key``, streets by ``street_key``."""
        return self._find("address_key", "address", address_keys), self._find("street_key", "street", street_keys)


def address_count(es: Elasticsearch, settings: IndicesSettings) -> dict[str, int]:
    """Documents of the index by kind (for the CLI and the benchmark)."""
    alias = alias_name(settings.index_prefix, "addresses")
    counts = {kind: es.count(index=alias, query={"term": {"kind": kind}})["count"] for kind in ("address", "street")}
    return {kind: count for kind, count in counts.items() if count}

