"""The sources a load reads: the national files (RPPS extraction, FINESS) or the Annuaire Santé FHIR
API, and the scheduled refresh."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from elasticsearch import Elasticsearch

from connectors.directory.finess import read_finess, stock_date
from connectors.directory.nomenclatures import load_specialties
from connectors.directory.participation import read_participation
from connectors.directory.records import StructureRecord
from connectors.directory.rpps import extraction_date, open_extraction, read_rpps
from connectors.geocoding import Geocoder
from indexer.directory.pipeline import run_pipeline
from indexer.directory.summary import LoadSummary
from mappings.registry import alias_name
from sas_core.clock import utcnow
from sas_core.errors import ConfigurationError
from sas_core.settings import DirectorySettings

log = logging.getLogger(__name__)


class _Progress:
    """A rich progress bar over the bytes of the RPPS file (nothing when disabled)."""

    def __init__(self, enabled: bool, total: int, label: str) -> None:
        self._progress = None
        self._task = None
        if enabled:
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(),
                                      TimeElapsedColumn(), TimeRemainingColumn(), transient=False)
            self._task = self._progress.add_task(label, total=total)
            self._progress.start()

    def advance(self, n: int) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task, n)

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def load_directory(
    *,
    settings: DirectorySettings,
    es: Elasticsearch,
    rpps_path: Path | str,
    finess_path: Path | str | None = None,
    participation_path: Path | str | None = None,
    full: bool = True,
    progress: bool = True,
    geocoder: Geocoder | None = None,
    threshold: float | None = None,
) -> LoadSummary:
    """Parse → geocode → bulk index the RPPS extraction (+ FINESS, + SAS participation).

    ``full=True`` also removes offers of the loaded sources that are no longer in the files (not those a
    rejected line names; capped, see ``delete_disappeared``). Raises ``DataQualityError`` when the
    rejected share exceeds the threshold or the deletions the cap (nothing is deleted then), when the
    FINESS file is in no known encoding or the RPPS zip is damaged, and
    ``ConfigurationError`` when the index or the reference data are missing. Returns the summary.
    """
    rpps_path = Path(rpps_path)
    specialties = load_specialties(settings.reference_data_dir)
    participation = read_participation(participation_path) if participation_path else None
    with open_extraction(rpps_path) as (_stream, size, member):
        pass  # validates the path / zip early and tells the progress bar the size
    sources = {"rpps": str(rpps_path)}
    dates: dict[str, datetime | None] = {"rpps": extraction_date(member) or extraction_date(rpps_path)}
    delete_sources = ["rpps"]
    structure_items: list = []
    cpts_names: dict[str, str] = {}
    if finess_path is not None:
        finess_path = Path(finess_path)
        sources["finess"] = str(finess_path)
        dates["finess"] = stock_date(finess_path)
        delete_sources.append("finess")
        # The kept establishments are few (CPTS, MSP, centres): read them first so that practitioners'
        # participation can name their CPTS; they are emitted after the RPPS lines.
        structure_items = list(read_finess(finess_path))
        cpts_names = {i.finess: i.name for i in structure_items if type(i) is StructureRecord and i.kind == "cpts"}
    bar = _Progress(progress, size, f"loading {rpps_path.name}")

    def items() -> Iterator:
        yield from read_rpps(rpps_path, specialties=specialties, on_bytes=bar.advance)
        yield from structure_items

    return run_pipeline(
        settings=settings, es=es, items=items(), sources=sources, source_dates=dates,
        delete_sources=delete_sources, full=full, participation=participation, geocoder=geocoder,
        specialties=specialties, threshold=threshold, cpts_names=cpts_names, progress_stop=bar.stop,
    )


def load_directory_fhir(
    *,
    settings: DirectorySettings,
    es: Elasticsearch,
    base_url: str | None = None,
    api_key: str | None = None,
    since: datetime | None = None,
    full: bool = False,
    participation_path: Path | str | None = None,
    geocoder: Geocoder | None = None,
    threshold: float | None = None,
) -> LoadSummary:
    """Load practice places from the Annuaire Santé FHIR API (incremental with ``since``)."""
    from connectors.directory.annuaire_fhir import AnnuaireFhirClient

    url = base_url or settings.annuaire_fhir_url
    if not url:
        raise ConfigurationError("no Annuaire Santé FHIR URL: set SAS_ANNUAIRE_FHIR_URL or pass --url")
    key = api_key or (settings.annuaire_fhir_api_key.get_secret_value() if settings.annuaire_fhir_api_key else None)
    specialties = load_specialties(settings.reference_data_dir)
    participation = read_participation(participation_path) if participation_path else None
    if full and since is not None:
        raise ConfigurationError("a full load reads everything: --since only goes with an incremental load")
    with AnnuaireFhirClient(url, api_key=key, page_size=settings.annuaire_fhir_page_size,
                            timeout_s=settings.es_request_timeout_s) as client:
        started = utcnow()
        return run_pipeline(
            settings=settings, es=es, items=client.practice_records(specialties=specialties, since=since),
            sources={"annuaire_fhir": url}, source_dates={"annuaire_fhir": started},
            delete_sources=["annuaire_fhir"], full=full, participation=participation, geocoder=geocoder,
            specialties=specialties, threshold=threshold,
        )


def _last_success(es: Elasticsearch, settings: DirectorySettings, tag: str) -> datetime | None:
    """Start of the last successful directory run of ``tag`` (``fhir`` / ``files``), if any."""
    body = {"size": 1, "sort": [{"started_at": "desc"}],
            "query": {"bool": {"filter": [{"term": {"kind": "directory"}}, {"term": {"status": "success"}},
                                          {"prefix": {"id": f"directory-{tag}-"}}]}}}
    try:
        hits = es.search(index=alias_name(settings.index_prefix, "harvest_runs"), body=body)["hits"]["hits"]
    except Exception:  # noqa: BLE001 - no history: a first refresh reads everything
        return None
    return datetime.fromisoformat(hits[0]["_source"]["started_at"]) if hits else None


def refresh_directory(*, es: Elasticsearch, settings: DirectorySettings) -> LoadSummary | None:
    """Scheduled refresh: an incremental Annuaire Santé FHIR load since the last successful run.

    Does nothing (and says so) when no FHIR URL is configured: file loads are operator actions
    (``sas directory load``), since the national extraction has to be fetched first.
    """
    if not settings.annuaire_fhir_url:
        log.info("directory refresh skipped: SAS_ANNUAIRE_FHIR_URL is not set")
        return None
    since = _last_success(es, settings, "fhir")
    return load_directory_fhir(settings=settings, es=es, since=since, full=False)
