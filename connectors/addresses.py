"""The national address base (BAN): the ``adresses-<dép>.csv`` export of adresse.data.gouv.fr.

Format (schema "Adresses" au format CSV of adresse.data.gouv.fr): UTF-8, ``;``-separated, one header
line, one line per numbered address::

    id;id_fantoir;numero;rep;nom_voie;code_postal;code_insee;nom_commune;code_insee_ancienne_commune;
    nom_ancienne_commune;x;y;lon;lat;type_position;alias;nom_ld;libelle_acheminement;nom_afnor;
    source_position;source_nom_voie;certification_commune;cad_parcelles

``id`` is the interoperability key ``<INSEE>_<FANTOIR or transitional code>_<number on 5 digits>[_<rep>]``
(``33063_4370_00012``, ``33063_4370_00012_bis``), ``lon``/``lat`` are WGS84 and ``code_insee`` is the
current commune — the arrondissement for Paris, Lyon and Marseille (``75115``). Files are read by header
name, so a column added by a later export does not shift the others; plain or gzip (``.csv.gz``, as the
site publishes them), detected by content. Lines are streamed: a whole département is never held.

Every line ends up as an ``AddressRecord`` or a ``Rejection`` with its reason (wrong column count, no id,
no street, unreadable INSEE code, unreadable or out-of-range coordinates, unreadable number); nothing is
dropped silently. The matching keys (``street_key`` / ``address_key``) are here, beside the parser,
because the directory load computes the same keys from the RPPS / FINESS address fields: both sides go
through ``normalize_street`` so that ``RUE DE LA PAIX`` (RPPS) and ``Rue de la Paix`` (BAN) meet.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from connectors.directory.records import REPETITIONS, Rejection
from sas_core.errors import DataQualityError
from sas_core.text import fold

#: The header of the current export, in order (the parser reads by name; these must all be there).
BAN_HEADER = (
    "id", "id_fantoir", "numero", "rep", "nom_voie", "code_postal", "code_insee", "nom_commune",
    "code_insee_ancienne_commune", "nom_ancienne_commune", "x", "y", "lon", "lat", "type_position", "alias",
    "nom_ld", "libelle_acheminement", "nom_afnor", "source_position", "source_nom_voie",
    "certification_commune", "cad_parcelles",
)
#: Columns without which a line cannot be placed or matched.
REQUIRED = ("id", "numero", "nom_voie", "code_postal", "code_insee", "nom_commune", "lon", "lat")
#: BAN writes ``99999`` for positions named after a lieu-dit with no real number.
NO_NUMBER = "99999"

_INSEE = re.compile(r"^(?:\d{5}|2[AB]\d{3})$")
_DIGITS = re.compile(r"^\d{1,5}$")

#: Street-type abbreviations (La Poste / RPPS codes) → the word BAN writes.
_TYPE_WORDS = {
    "r": "rue", "av": "avenue", "ave": "avenue", "bd": "boulevard", "bld": "boulevard", "pl": "place",
    "che": "chemin", "ch": "chemin", "chem": "chemin", "rte": "route", "all": "allee", "imp": "impasse",
    "qu": "quai", "qua": "quai", "crs": "cours", "sq": "square", "fg": "faubourg", "fbg": "faubourg",
    "pas": "passage", "pass": "passage", "prom": "promenade", "res": "residence", "lot": "lotissement",
    "sen": "sentier", "vla": "villa", "ham": "hameau", "hle": "halle", "car": "carrefour", "rpt": "rond point",
    "mte": "montee", "espl": "esplanade", "esp": "esplanade", "za": "zone artisanale", "zi": "zone industrielle",
    "tra": "traverse", "vc": "voie communale", "lieu": "lieu", "ld": "lieu dit", "cite": "cite", "cit": "cite",
    "voie": "voie", "rle": "ruelle", "sent": "sentier", "pkg": "parking", "pont": "pont", "port": "port",
}
#: Abbreviations anywhere in the name.
_WORDS = {"st": "saint", "ste": "sainte", "sts": "saints", "stes": "saintes", "gal": "general",
          "gen": "general", "mal": "marechal", "pdt": "president", "dr": "docteur", "pr": "professeur",
          "cdt": "commandant", "lt": "lieutenant", "cne": "capitaine", "ns": "notre", "nd": "notre dame"}
#: Articles and linking words: written or left out, case and elision vary between sources.
_STOP = {"de", "du", "des", "la", "le", "les", "l", "d", "et", "a", "au", "aux", "en"}
_REP_WORDS = {code.lower(): word for code, word in REPETITIONS.items()}


def normalize_street(text: str) -> str:
    """Comparable street name: ``"AV DU GAL DE GAULLE"`` and ``"Avenue du Général de Gaulle"`` →
    ``"avenue general gaulle"``."""
    tokens = fold(text).split()
    out: list[str] = []
    for position, token in enumerate(tokens):
        if position == 0 and token in _TYPE_WORDS:
            out.extend(_TYPE_WORDS[token].split())
            continue
        token = _WORDS.get(token, token)
        if token in _STOP:
            continue
        out.extend(token.split())
    return " ".join(out)


_NUMBERISH = re.compile(r"^\d{1,5}[a-z]?$")
_REP_TOKENS = {"bis", "ter", "quater", "quinquies", "b", "t", "q", "c"}


def suggest_text(text: str) -> str:
    """The searchable, accent-folded form of an address, street or typed prefix:
    ``"12 bis av. du Gal de Gaulle, 33000 Bordeaux"`` → ``"12 bis avenue general gaulle 33000 bordeaux"``.
    The same function serves the indexed labels and what the operator types, so both meet."""
    tokens = fold(text).split()
    out: list[str] = []
    typed = False
    for token in tokens:
        if not typed and (_NUMBERISH.match(token) or (out and token in _REP_TOKENS)):
            out.append(_REP_WORDS.get(token, token) if not token.isdigit() else token)
            continue
        if not typed:
            typed = True
            if token in _TYPE_WORDS:
                out.extend(_TYPE_WORDS[token].split())
                continue
        token = _WORDS.get(token, token)
        if token in _STOP:
            continue
        out.extend(token.split())
    return " ".join(out)


def normalize_number(number: str, rep: str = "") -> str:
    """``("012", "B")`` → ``"12bis"``; ``("12", "bis")`` → ``"12bis"``; ``("12", "")`` → ``"12"``."""
    digits = number.strip().lstrip("0") or ("0" if number.strip() else "")
    word = fold(rep).replace(" ", "")
    word = _REP_WORDS.get(word, word)
    return f"{digits}{word}"


def street_key(insee: str, street: str) -> str:
    """``"33063|rue sainte catherine"``: one street of one commune (empty when either part is)."""
    name = normalize_street(street)
    return f"{insee.strip().upper()}|{name}" if insee and name else ""


def address_key(insee: str, street: str, number: str, rep: str = "") -> str:
    """``"33063|rue sainte catherine|12bis"``: one numbered address (empty without a number)."""
    base = street_key(insee, street)
    num = normalize_number(number, rep)
    return f"{base}|{num}" if base and num and num != NO_NUMBER else ""


@dataclass(slots=True)
class AddressRecord:
    """One line of the BAN export, read."""

    line_no: int
    id: str
    fantoir: str
    number: str                 # "12" ("" for a lieu-dit position, BAN's 99999)
    rep: str                    # "bis", "a"… as BAN writes it
    street: str                 # nom_voie, "Rue Sainte-Catherine"
    postcode: str
    insee: str
    city: str
    old_insee: str
    old_city: str
    lon: float
    lat: float
    type_position: str
    locality: str               # nom_ld
    delivery_city: str          # libelle_acheminement
    certified: bool

    def street_key(self) -> str:
        return street_key(self.insee, self.street)

    def address_key(self) -> str:
        return address_key(self.insee, self.street, self.number, self.rep) if self.number else ""

    def label(self) -> str:
        """``"12 bis Rue Sainte-Catherine 33000 Bordeaux"`` (the form the operator's box shows)."""
        head = " ".join(p for p in (self.number, self.rep, self.street) if p)
        return f"{head} {self.postcode} {self.city}".strip()


def _is_gzip(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(2) == b"\x1f\x8b"


@contextmanager
def open_ban(path: Path | str):
    """A text stream over a BAN file, plain or gzip; a clear error when it is neither readable nor there."""
    path = Path(path)
    if not path.is_file():
        raise DataQualityError(f"BAN address file not found: {path}")
    raw = gzip.open(path, "rb") if _is_gzip(path) else path.open("rb")  # noqa: SIM115 - closed below
    try:
        yield io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
    finally:
        raw.close()


def _float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def read_ban(path: Path | str, *, on_line: Callable[[int], None] | None = None
             ) -> Iterator[AddressRecord | Rejection]:
    """Stream the records of a BAN ``adresses-*.csv[.gz]`` file (see module doc).

    Raises ``DataQualityError`` when the first line is not the BAN header (a wrong file must not be read
    as thousands of bad lines), or when the file is not UTF-8 / a damaged gzip.
    """
    with open_ban(path) as text:
        reader = csv.reader(text, delimiter=";")
        try:
            read_row = _row_reader(_ban_columns(next(reader, None), path))
            line_no = 1
            for row in reader:
                line_no += 1
                if on_line is not None:
                    on_line(line_no)
                if row:
                    yield read_row(row, line_no)
        except UnicodeDecodeError as exc:
            raise DataQualityError(f"{path}: not UTF-8 (the BAN export is UTF-8): {exc}") from exc
        except (EOFError, OSError, gzip.BadGzipFile) as exc:
            raise DataQualityError(f"{path}: damaged or truncated file: {exc}") from exc


def _ban_columns(header: list[str] | None, path: Path | str) -> list[str]:
    """The stripped header of a BAN file, refused when it is not one."""
    if header is None:
        raise DataQualityError(f"{path}: empty file, expected the BAN header ({';'.join(BAN_HEADER[:6])};…)")
    header = [h.strip() for h in header]
    missing = [name for name in REQUIRED if name not in header]
    if missing:
        raise DataQualityError(f"{path}: not a BAN adresses CSV (';' separated): missing columns "
                               f"{missing}; expected the header {';'.join(BAN_HEADER)}")
    return header


def _row_reader(header: list[str]) -> Callable[[list[str], int], AddressRecord | Rejection]:
    """The function that checks one row of a file with this header and makes its record, built once per
    file (the column positions are closure variables, the cheapest reads in the per-line loop)."""
    width = len(header)
    col = {name: header.index(name) for name in BAN_HEADER if name in header}
    i_id, i_fantoir = col["id"], col.get("id_fantoir")
    i_num, i_rep, i_street = col["numero"], col.get("rep"), col["nom_voie"]
    i_cp, i_insee, i_city = col["code_postal"], col["code_insee"], col["nom_commune"]
    i_old_insee, i_old_city = col.get("code_insee_ancienne_commune"), col.get("nom_ancienne_commune")
    i_lon, i_lat = col["lon"], col["lat"]
    i_type, i_ld = col.get("type_position"), col.get("nom_ld")
    i_ach, i_cert = col.get("libelle_acheminement"), col.get("certification_commune")

    def get(row: list[str], index: int | None) -> str:
        return row[index].strip() if index is not None else ""

    def read_row(row: list[str], line_no: int) -> AddressRecord | Rejection:
        if len(row) != width:
            return Rejection("wrong_column_count", line_no, f"{len(row)} columns instead of {width}")
        ident = row[i_id].strip()
        if not ident:
            return Rejection("missing_id", line_no)
        insee = row[i_insee].strip().upper()
        if not _INSEE.match(insee):
            return Rejection("bad_insee", line_no, insee[:10])
        street = row[i_street].strip()
        if not street:
            return Rejection("missing_street", line_no)
        number = row[i_num].strip()
        if number and not _DIGITS.match(number):
            return Rejection("bad_number", line_no, number[:10])
        lon, lat = _float(row[i_lon]), _float(row[i_lat])
        if lon is None or lat is None:
            return Rejection("bad_coordinates", line_no)
        if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0) or (lat == 0.0 and lon == 0.0):
            return Rejection("coordinates_out_of_range", line_no)
        return AddressRecord(
            line_no=line_no, id=ident, fantoir=get(row, i_fantoir),
            number="" if number == NO_NUMBER else (number.lstrip("0") or "0") if number else "",
            rep=get(row, i_rep), street=street, postcode=row[i_cp].strip(), insee=insee,
            city=row[i_city].strip(), old_insee=get(row, i_old_insee), old_city=get(row, i_old_city),
            lon=lon, lat=lat, type_position=get(row, i_type), locality=get(row, i_ld),
            delivery_city=get(row, i_ach), certified=get(row, i_cert) == "1",
        )

    return read_row


def format_line(values: dict[str, str]) -> str:
    """One export line from named values (missing columns empty): used by the generator and tests."""
    return ";".join(str(values.get(name, "")) for name in BAN_HEADER)
