"""run_pipeline: the stages over connector output, the writes, the deletions and the run record."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from datetime import datetime

from elasticsearch import Elasticsearch

from connectors.directory.nomenclatures import Specialties, load_specialties
from connectors.directory.participation import ParticipationTable
from connectors.geocoding import Geocoder, build_geocoder
from connectors.reference import load_communes
from indexer.addresses import AddressLocator
from indexer.directory.offers_index import (
    check_alias,
    delete_disappeared,
    known_documents,
    refresh_setting,
    write_offers,
)
from indexer.directory.run_context import DirectoryRun
from indexer.directory.stages import bulk_actions, dedupe, documents, geocode, triage, validate_sample
from indexer.directory.summary import LoadSummary, run_document, threshold_message
from indexer.run_records import record_run
from mappings.registry import alias_name
from sas_core.clock import iso_or_none, utcnow
from sas_core.errors import DataQualityError
from sas_core.settings import DirectorySettings, GeocoderSettings


def build_directory_geocoder(settings: GeocoderSettings) -> Geocoder:
    """The geocoder the settings ask for (gazetteer from the reference-data directory, BAN if set)."""
    cache_path = settings.geocoder_cache_path or (settings.cache_dir / "geocode-ban.sqlite")
    return build_geocoder(
        communes=load_communes(settings.reference_data_dir),
        ban_url=settings.geocoder_ban_url,
        ban_timeout_s=settings.geocoder_ban_timeout_s,
        ban_cache_path=cache_path if settings.geocoder_ban_url else None,
        ban_min_score=settings.geocoder_ban_min_score,
    )


def run_pipeline(
    *,
    settings: DirectorySettings,
    es: Elasticsearch,
    items: Iterable,
    sources: dict[str, str],
    source_dates: dict[str, datetime | None],
    delete_sources: list[str],
    full: bool,
    participation: ParticipationTable | None = None,
    geocoder: Geocoder | None = None,
    specialties: Specialties | None = None,
    threshold: float | None = None,
    cpts_names: dict[str, str] | None = None,
    progress_stop=None,
) -> LoadSummary:
    """Run the stages over ``items`` (connector output) and write the offers. Used by every source."""
    alias = alias_name(settings.index_prefix, "offers")
    check_alias(es, alias)
    tag = "fhir" if "annuaire_fhir" in sources else "files"
    summary = LoadSummary(run_id=f"directory-{tag}-{utcnow():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}",
                          mode="full" if full else "incremental", sources=sources)
    run = DirectoryRun(
        settings=settings,
        summary=summary,
        alias=alias,
        geocoder=geocoder or build_directory_geocoder(settings),
        specialties=specialties or load_specialties(settings.reference_data_dir),
        participation=participation,
        source_dates={k: iso_or_none(v) for k, v in source_dates.items()},
        threshold=settings.directory_reject_threshold if threshold is None else threshold,
        min_lines=settings.directory_reject_min_lines,
        cpts_names=cpts_names or {},
        locator=AddressLocator.for_settings(es, settings),
    )
    if participation is not None:
        summary.lines_read += participation.lines
        for reason, count in participation.rejected_by_reason().items():
            summary.rejected_by_reason[f"participation:{reason}"] += count

    previous_refresh = None
    if full:
        run.known = known_documents(es, alias)
        previous_refresh = refresh_setting(es, alias)
        es.indices.put_settings(index=alias, settings={"index": {"refresh_interval": "-1"}})
    started = time.perf_counter()
    try:
        records = triage(run, items)
        placed = geocode(run, records)
        docs = dedupe(run, documents(run, placed))
        write_offers(run, es, bulk_actions(run, validate_sample(run, docs)))
        if progress_stop is not None:
            progress_stop()
        if summary.rejected_share > run.threshold:
            raise DataQualityError(threshold_message(summary, run.threshold))
        if full and delete_sources:
            delete_disappeared(run, es, delete_sources)
        summary.status = "success" if not summary.failed else "partial"
    except Exception as exc:
        summary.status = "failed"
        summary.error = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        raise
    finally:
        if progress_stop is not None:
            progress_stop()
        if full:
            es.indices.put_settings(index=alias, settings={"index": {"refresh_interval": previous_refresh}})
        es.indices.refresh(index=alias)
        summary.ended_at = utcnow()
        summary.geocoder = dict(run.geocoder.stats)
        summary.geocoder["validated_documents"] = run.validated
        summary.geocoder["pipeline_s"] = round(time.perf_counter() - started, 3)
        # Refreshed at once: dashboards and the next incremental refresh see it.
        record_run(es, prefix=settings.index_prefix, document=run_document(summary), refresh=True)
    return summary

