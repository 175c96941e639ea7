"""Code lists used by the directory: professions (TRE_G15), ordinal specialties (TRE_R38), exercise
modes (TRE_R23), FINESS categories of the structures the SAS shows (TRE_R66).

The TRE_R38 table is packaged (``connectors/reference_data/specialites_tre_r38.csv``); a newer official copy
downloaded by ``sas reference download`` into the reference-data directory takes precedence.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

#: TRE_G15 "profession de santé" codes found in the RPPS / ADELI extraction.
PROFESSIONS: dict[str, str] = {
    "10": "Médecin",
    "21": "Pharmacien",
    "26": "Audioprothésiste",
    "28": "Opticien-Lunetier",
    "31": "Assistant dentaire",
    "32": "Physicien médical",
    "35": "Préparateur en pharmacie",
    "36": "Préparateur en pharmacie hospitalière",
    "40": "Chirurgien-Dentiste",
    "50": "Sage-Femme",
    "60": "Infirmier",
    "69": "Infirmier psychiatrique",
    "70": "Masseur-Kinésithérapeute",
    "80": "Pédicure-Podologue",
    "81": "Orthoprothésiste",
    "82": "Podo-Orthésiste",
    "83": "Orthopédiste-Orthésiste",
    "84": "Oculariste",
    "85": "Epithésiste",
    "86": "Technicien de laboratoire médical",
    "91": "Orthophoniste",
    "92": "Orthoptiste",
    "93": "Psychologue",
    "94": "Ergothérapeute",
    "95": "Diététicien",
    "96": "Psychomotricien",
    "98": "Manipulateur ERM",
}

#: TRE_R23 "mode d'exercice".
EXERCISE_MODES: dict[str, str] = {"L": "Libéral", "S": "Salarié", "B": "Bénévole"}

#: TRE_R66 categories of the structures the SAS search shows, and the offer kind each becomes.
FINESS_KINDS: dict[str, str] = {"604": "cpts", "603": "msp", "124": "centre"}
FINESS_CATEGORY_LABELS: dict[str, str] = {
    "604": "Communauté Professionnelle Territoriale de Santé (CPTS)",
    "603": "Maison de santé (L.6223-3)",
    "124": "Centre de Santé",
}

#: TRE_R02 "secteur d'activité" labels the generator writes (the parser keeps whatever the file says).
ACTIVITY_SECTORS: dict[str, str] = {
    "SA01": "Etablissement public de santé",
    "SA05": "Centre de santé",
    "SA07": "Cabinet individuel",
    "SA08": "Cabinet de groupe",
    "SA09": "Exercice en société",
    "SA16": "Maison de santé",
}

TRE_R38_SYSTEM = "https://mos.esante.gouv.fr/NOS/TRE_R38-SpecialiteOrdinale/FHIR/TRE-R38-SpecialiteOrdinale"
TRE_G15_SYSTEM = "https://mos.esante.gouv.fr/NOS/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante"
TRE_R23_SYSTEM = "https://mos.esante.gouv.fr/NOS/TRE_R23-ModeExercice/FHIR/TRE-R23-ModeExercice"

SPECIALTIES_FILE = "specialites_tre_r38.csv"


@dataclass(frozen=True)
class Specialties:
    """TRE_R38: code → official display name."""

    labels: dict[str, str]
    source: str

    def label(self, code: str) -> str | None:
        return self.labels.get(code)

    def __contains__(self, code: str) -> bool:
        return code in self.labels


def read_specialties_csv(path_or_text: Path | str) -> dict[str, str]:
    """Parse a ``code;display`` CSV (the packaged format, and what the downloader writes)."""
    text = path_or_text.read_text(encoding="utf-8-sig") if isinstance(path_or_text, Path) else path_or_text
    rows = csv.DictReader(text.splitlines(), delimiter=";")
    if rows.fieldnames is None or not {"code", "display"} <= set(rows.fieldnames):
        raise ValueError("TRE_R38 table: expected a 'code;display' header")
    return {row["code"].strip(): row["display"].strip() for row in rows if row.get("code")}


def load_specialties(reference_dir: Path | None = None) -> Specialties:
    """The TRE_R38 table from the reference-data directory when present, else the packaged copy."""
    if reference_dir is not None:
        candidate = Path(reference_dir) / SPECIALTIES_FILE
        if candidate.is_file():
            return Specialties(read_specialties_csv(candidate), str(candidate))
    packaged = resources.files("connectors").joinpath("reference_data", SPECIALTIES_FILE)
    return Specialties(read_specialties_csv(packaged.read_text(encoding="utf-8-sig")), "packaged")
