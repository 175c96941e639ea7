"""Reference tables: the communes gazetteer and the TRE_R38 nomenclature, in their official formats.

The project reads ``communes_fr.csv`` (``code_insee;nom;departement;region;codes_postaux;latitude;
longitude;population``) from the reference-data directory (``settings.reference_data_dir``); it is never
committed. For a real deployment ``sas reference download`` fetches the official sources and builds that
file from them:

* La Poste "base officielle des codes postaux" (``laposte_hexasmal``): ``;``-separated,
  ``Code_commune_INSEE;Nom_de_la_commune;Code_postal;Libellé_d_acheminement;Ligne_5`` (older
  exports add ``coordonnees_gps``), one line per (commune, postcode, delivery label);
* the INSEE / Etalab communes list (``geo.api.gouv.fr/communes``, JSON): ``code``, ``nom``,
  ``codeDepartement``, ``codeRegion``, ``centre`` (GeoJSON point), ``population``, including the
  municipal districts of Paris, Lyon and Marseille;
* the ANS TRE_R38 FHIR CodeSystem (``concept[]`` with ``code`` / ``display``), written as
  ``specialites_tre_r38.csv`` (``code;display``).

Parsing is separate from downloading, so both are tested here on small local files and a local server.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from sas_core.errors import BackendUnavailable, ConfigurationError, DataQualityError

COMMUNES_FILE = "communes_fr.csv"
COMMUNES_HEADER = ("code_insee", "nom", "departement", "region", "codes_postaux", "latitude", "longitude",
                   "population")

#: Official sources (used only by ``sas reference download``; overridable for a mirror).
DEFAULT_SOURCES = {
    "laposte": ("https://datanova.legroupe.laposte.fr/api/explore/v2.1/catalog/datasets/laposte_hexasmal/"
                "exports/csv?delimiter=%3B"),
    "communes": ("https://geo.api.gouv.fr/communes?type=commune-actuelle,arrondissement-municipal"
                 "&fields=nom,code,codesPostaux,codeDepartement,codeRegion,centre,population&format=json"),
    "tre_r38": ("https://mos.esante.gouv.fr/NOS/TRE_R38-SpecialiteOrdinale/FHIR/TRE-R38-SpecialiteOrdinale/"
                "TRE_R38-SpecialiteOrdinale-FHIR.json"),
}


@dataclass(frozen=True, slots=True)
class Commune:
    """One commune or municipal district with its centroid."""

    insee: str
    name: str
    departement: str
    region: str
    postcodes: tuple[str, ...]
    lat: float
    lon: float
    population: int | None


# --------------------------------------------------------------------------------------------------
# The compiled communes table the platform reads
# --------------------------------------------------------------------------------------------------

def communes_path(reference_dir: Path | None) -> Path:
    """Where the communes table is expected; a clear error when the directory is not configured."""
    if reference_dir is None:
        raise ConfigurationError(
            "no reference-data directory: set SAS_REFERENCE_DATA_DIR (or run `sas reference download`)"
        )
    path = Path(reference_dir) / COMMUNES_FILE
    if not path.is_file():
        raise ConfigurationError(
            f"{path} is missing: run `sas reference download` or point SAS_REFERENCE_DATA_DIR at the table"
        )
    return path


def read_communes(path: Path) -> Iterator[Commune]:
    """Stream the compiled communes table (``;``, UTF-8, header ``code_insee;nom;…``)."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = csv.DictReader(handle, delimiter=";")
        missing = [c for c in COMMUNES_HEADER[:7] if c not in (rows.fieldnames or [])]
        if missing:
            raise DataQualityError(f"{path.name}: missing columns {missing}")
        for row in rows:
            try:
                lat, lon = float(row["latitude"]), float(row["longitude"])
            except (TypeError, ValueError):
                continue  # a commune without centroid cannot place anything
            population = (row.get("population") or "").strip()
            yield Commune(
                insee=row["code_insee"].strip(),
                name=row["nom"].strip(),
                departement=row["departement"].strip(),
                region=(row.get("region") or "").strip(),
                postcodes=tuple((row["codes_postaux"] or "").split()),
                lat=lat,
                lon=lon,
                population=int(population) if population.isdigit() else None,
            )


def load_communes(reference_dir: Path | None) -> list[Commune]:
    """Every commune of the reference table (about 35,000: small enough to hold)."""
    return list(read_communes(communes_path(reference_dir)))


def write_communes(path: Path, communes: Iterable[Commune]) -> int:
    """Write the compiled table; returns the number of rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter=";", lineterminator="\n")
        writer.writerow(COMMUNES_HEADER)
        for c in communes:
            writer.writerow([c.insee, c.name, c.departement, c.region, " ".join(c.postcodes),
                             f"{c.lat:.5f}", f"{c.lon:.5f}", "" if c.population is None else c.population])
            count += 1
    tmp.replace(path)
    return count


# --------------------------------------------------------------------------------------------------
# Official formats
# --------------------------------------------------------------------------------------------------

def _norm_header(name: str) -> str:
    from sas_core.text import fold

    return fold(name.lstrip("#")).replace(" ", "_")


def parse_laposte_hexasmal(text: str) -> dict[str, set[str]]:
    """INSEE code → postcodes, from the La Poste base (``;``, header names vary in accents / ``#``)."""
    rows = csv.reader(io.StringIO(text), delimiter=";")
    header = next(rows, None)
    if header is None:
        raise DataQualityError("La Poste postcodes file is empty")
    names = [_norm_header(h) for h in header]
    try:
        i_insee = names.index("code_commune_insee")
        i_cp = names.index("code_postal")
    except ValueError as exc:
        raise DataQualityError(f"La Poste postcodes file: unexpected header {header}") from exc
    postcodes: dict[str, set[str]] = {}
    for row in rows:
        if len(row) <= max(i_insee, i_cp):
            continue
        insee, cp = row[i_insee].strip(), row[i_cp].strip()
        if insee and len(cp) == 5 and cp.isdigit():
            postcodes.setdefault(insee, set()).add(cp)
    if not postcodes:
        raise DataQualityError("La Poste postcodes file has no usable line")
    return postcodes


def parse_geo_communes(text: str) -> list[dict]:
    """The Etalab / INSEE communes JSON list (``geo.api.gouv.fr/communes`` shape)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataQualityError(f"communes JSON is not valid JSON: {exc}") from exc
    if not isinstance(data, list):
        raise DataQualityError("communes JSON: expected a list of communes")
    return data


def build_communes(laposte_text: str, communes_json_text: str) -> list[Commune]:
    """Join the La Poste postcodes with the INSEE communes (centroid, département, population).

    Postcodes come from La Poste (authoritative for mail) and fall back to the communes list's own
    ``codesPostaux``; a commune without centroid is left out (it could not place anything).
    """
    postcodes = parse_laposte_hexasmal(laposte_text)
    communes: list[Commune] = []
    for item in parse_geo_communes(communes_json_text):
        code = str(item.get("code") or "").strip()
        centre = (item.get("centre") or {}).get("coordinates")
        if not code or not centre or len(centre) != 2:
            continue
        pcs = sorted(postcodes.get(code) or set(item.get("codesPostaux") or []))
        population = item.get("population")
        communes.append(Commune(
            insee=code,
            name=str(item.get("nom") or "").strip(),
            departement=str(item.get("codeDepartement") or "").strip(),
            region=str(item.get("codeRegion") or "").strip(),
            postcodes=tuple(pcs),
            lat=float(centre[1]),
            lon=float(centre[0]),
            population=int(population) if isinstance(population, (int, float)) else None,
        ))
    if not communes:
        raise DataQualityError("communes JSON has no commune with a centroid")
    return sorted(communes, key=lambda c: c.insee)


def parse_tre_r38_codesystem(text: str) -> dict[str, str]:
    """TRE_R38 code → display from the ANS FHIR CodeSystem JSON (nested concepts flattened)."""
    try:
        resource = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataQualityError(f"TRE_R38 CodeSystem is not valid JSON: {exc}") from exc
    if resource.get("resourceType") != "CodeSystem":
        raise DataQualityError("TRE_R38: expected a FHIR CodeSystem resource")
    labels: dict[str, str] = {}

    def walk(concepts: list[dict]) -> None:
        for concept in concepts or []:
            if concept.get("code") and concept.get("display"):
                labels[concept["code"]] = concept["display"]
            walk(concept.get("concept") or [])

    walk(resource.get("concept") or [])
    if not labels:
        raise DataQualityError("TRE_R38 CodeSystem has no concept")
    return labels


def write_specialties(path: Path, labels: dict[str, str]) -> int:
    """Write ``code;display`` (the format ``nomenclatures.load_specialties`` reads)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter=";", lineterminator="\n")
        writer.writerow(["code", "display"])
        for code in sorted(labels):
            writer.writerow([code, labels[code]])
    tmp.replace(path)
    return len(labels)


# --------------------------------------------------------------------------------------------------
# Download (real deployments only: these machines have no internet)
# --------------------------------------------------------------------------------------------------

def _get(client: httpx.Client, url: str) -> str:
    try:
        response = client.get(url)
    except httpx.HTTPError as exc:
        raise BackendUnavailable(f"cannot download {url}: {exc}") from exc
    if response.status_code != 200:
        raise BackendUnavailable(f"download of {url} answered HTTP {response.status_code}")
    # La Poste publishes UTF-8 today, Latin-1 in older exports.
    try:
        return response.content.decode("utf-8-sig")
    except UnicodeDecodeError:
        return response.content.decode("latin-1")


def download_reference(
    *,
    reference_dir: Path,
    sources: dict[str, str] | None = None,
    timeout_s: float = 120.0,
) -> dict[str, object]:
    """Download the official files into ``reference_dir`` and build the tables the platform reads.

    Keeps the raw downloads next to the compiled tables (``laposte_hexasmal.csv``, ``communes_insee.json``,
    ``TRE_R38-SpecialiteOrdinale-FHIR.json``) so that a build can be checked against its sources.
    Returns what was written.
    """
    urls = {**DEFAULT_SOURCES, **(sources or {})}
    reference_dir = Path(reference_dir)
    reference_dir.mkdir(parents=True, exist_ok=True)
    with httpx.Client(timeout=timeout_s, follow_redirects=True,
                      headers={"User-Agent": "sas-platform reference download"}) as client:
        laposte = _get(client, urls["laposte"])
        communes_json = _get(client, urls["communes"])
        tre_r38 = _get(client, urls["tre_r38"])
    communes = build_communes(laposte, communes_json)
    labels = parse_tre_r38_codesystem(tre_r38)
    (reference_dir / "laposte_hexasmal.csv").write_text(laposte, encoding="utf-8")
    (reference_dir / "communes_insee.json").write_text(communes_json, encoding="utf-8")
    (reference_dir / "TRE_R38-SpecialiteOrdinale-FHIR.json").write_text(tre_r38, encoding="utf-8")
    from connectors.directory.nomenclatures import SPECIALTIES_FILE

    written_communes = write_communes(reference_dir / COMMUNES_FILE, communes)
    written_specialties = write_specialties(reference_dir / SPECIALTIES_FILE, labels)
    return {
        "reference_dir": str(reference_dir),
        "communes": written_communes,
        "specialties": written_specialties,
        "sources": urls,
    }
