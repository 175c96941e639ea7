"""The RPPS / Annuaire Santé extraction ``PS_LibreAcces_Personne_activite_<YYYYMMDDhhmm>.txt``.

``|``-separated, a trailing ``|`` on every line, a header line, UTF-8; one line per (professional,
practice place, savoir-faire). Read as a stream (plain file or inside the published zip), one line at a
time: memory stays flat whatever the size. Columns are found by header name, so a reordered or extended
extraction still reads; a file without the needed columns is refused as a whole.

Consecutive lines of the same professional (the extraction is sorted by identifier) are merged per
practice place: two savoir-faire lines of one office make one record with two specialties.
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from connectors.directory.ids import ADELI_TYPE, RPPS_TYPE, check_national
from connectors.directory.nomenclatures import PROFESSIONS, Specialties
from connectors.directory.records import Address, PracticeRecord, Rejection, Remark
from sas_core.errors import DataQualityError

FILE_GLOB = "PS_LibreAcces_Personne_activite_*.txt"
_NAME_RE = re.compile(r"PS_LibreAcces_Personne_activite_(\d{12})\.txt$")
_ZIP_DATE_RE = re.compile(r"PS_LibreAcces_(\d{8,12})")
_NOT_DIGIT = re.compile(r"\D+")
#: What a national id (``8``+RPPS, ``0``+ADELI) read from a rejected line must look like to be trusted.
_KEY_RE = re.compile(r"^[08][0-9]{9,11}$")
_PLACE_RE = re.compile(r"^[A-Za-z0-9_.]{1,64}$")
#: First bytes of a zip archive (local file header, empty archive, spanned archive).
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")

#: The header of the extraction, in the published order.
HEADER: tuple[str, ...] = (
    "Type d'identifiant PP", "Identifiant PP", "Identification nationale PP",
    "Code civilité d'exercice", "Libellé civilité d'exercice", "Code civilité", "Libellé civilité",
    "Nom d'exercice", "Prénom d'exercice", "Code profession", "Libellé profession",
    "Code catégorie professionnelle", "Libellé catégorie professionnelle",
    "Code type savoir-faire", "Libellé type savoir-faire", "Code savoir-faire", "Libellé savoir-faire",
    "Code mode exercice", "Libellé mode exercice", "Numéro SIRET site", "Numéro SIREN site",
    "Numéro FINESS site", "Numéro FINESS établissement juridique",
    "Identifiant technique de la structure", "Raison sociale site", "Enseigne commerciale site",
    "Complément destinataire (coord. structure)", "Complément point géographique (coord. structure)",
    "Numéro Voie (coord. structure)", "Indice répétition voie (coord. structure)",
    "Code type de voie (coord. structure)", "Libellé type de voie (coord. structure)",
    "Libellé Voie (coord. structure)", "Mention distribution (coord. structure)",
    "Bureau cedex (coord. structure)", "Code postal (coord. structure)",
    "Code commune (coord. structure)", "Libellé commune (coord. structure)",
    "Code pays (coord. structure)", "Libellé pays (coord. structure)",
    "Téléphone (coord. structure)", "Téléphone 2 (coord. structure)", "Télécopie (coord. structure)",
    "Adresse e-mail (coord. structure)", "Code Département (structure)",
    "Libellé Département (structure)", "Ancien identifiant de la structure",
    "Autorité d'enregistrement", "Code secteur d'activité", "Libellé secteur d'activité",
    "Code section tableau pharmaciens", "Libellé section tableau pharmaciens",
)

#: Columns without which a file cannot be loaded at all.
REQUIRED = (
    "Type d'identifiant PP", "Identifiant PP", "Nom d'exercice", "Prénom d'exercice", "Code profession",
    "Code postal (coord. structure)", "Libellé commune (coord. structure)",
)


def extraction_date(path: Path | str) -> datetime | None:
    """The extraction time in the file name (``..._202501150830.txt`` → 2025-01-15 08:30 UTC)."""
    name = Path(path).name
    match = _NAME_RE.search(name) or _ZIP_DATE_RE.search(name)
    if not match:
        return None
    stamp = match.group(1).ljust(12, "0")
    try:
        return datetime.strptime(stamp, "%Y%m%d%H%M").replace(tzinfo=timezone.utc)
    except ValueError:
        return None


@contextmanager
def open_extraction(path: Path | str):
    """A binary stream of the extraction, plus its uncompressed size and member name.

    Accepts the ``.txt`` itself or the published zip (the member ``PS_LibreAcces_Personne_activite_*.txt``
    is picked among the others).
    """
    path = Path(path)
    if not path.is_file():
        raise DataQualityError(f"RPPS extraction not found: {path}")
    with path.open("rb") as probe:
        magic = probe.read(4)
    if zipfile.is_zipfile(path) or magic in _ZIP_MAGIC or path.suffix.lower() == ".zip":
        # A zip whose end (central directory) is missing is no zip for ``is_zipfile``: without the magic
        # check it would be read as text and refused as "header is not UTF-8", hiding the real cause.
        try:
            archive = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise DataQualityError(_damaged(path, exc)) from exc
        with archive:
            members = [i for i in archive.infolist() if _NAME_RE.search(Path(i.filename).name)]
            if not members:
                raise DataQualityError(
                    f"{path.name}: no PS_LibreAcces_Personne_activite_<date>.txt inside the zip"
                )
            info = members[0]
            try:
                with archive.open(info) as raw:
                    yield _ZipMember(raw, path), info.file_size, info.filename
            except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
                # A member cut or corrupted after its start fails while streaming (CRC, short read).
                raise DataQualityError(_damaged(path, exc)) from exc
        return
    with path.open("rb", buffering=1 << 20) as raw:
        yield raw, path.stat().st_size, path.name


def _damaged(path: Path, exc: BaseException) -> str:
    return (f"{path.name}: damaged zip archive (archive zip endommagée, truncated or corrupted download?): "
            f"{exc}; fetch the extraction again")


class _ZipMember(io.BufferedReader):
    """The zip member as a buffered line stream whose read errors name the damaged archive."""

    def __init__(self, raw, path: Path) -> None:
        super().__init__(raw, buffer_size=1 << 20)
        self._path = path

    def __next__(self) -> bytes:
        try:
            return super().__next__()
        except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
            raise DataQualityError(_damaged(self._path, exc)) from exc

    def readline(self, size: int | None = -1) -> bytes:
        try:
            return super().readline(size)
        except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
            raise DataQualityError(_damaged(self._path, exc)) from exc


def _phone(value: str) -> str:
    digits = _NOT_DIGIT.sub("", value)
    return digits if len(digits) >= 8 else ""


class _Columns:
    """Positions of the columns we use, found by header name."""

    def __init__(self, header: list[str]) -> None:
        names = [h.strip().lstrip("\ufeff") for h in header]
        if names and names[-1] == "":
            names = names[:-1]  # the trailing "|" of the header line
        missing = [c for c in REQUIRED if c not in names]
        if missing:
            raise DataQualityError(
                "not an RPPS 'Personne_activite' extraction: header lacks " + ", ".join(repr(m) for m in missing)
            )
        self.count = len(names)
        index = {name: i for i, name in enumerate(names)}
        self.get = index.get  # column name → position or None

    def pos(self, name: str) -> int:
        """Position of a column; an absent optional column reads as an always-empty extra column at the
        end of the line (index ``count``)."""
        p = self.get(name)
        return self.count if p is None else p


def read_rpps(
    path: Path | str,
    *,
    specialties: Specialties,
    on_bytes: Callable[[int], None] | None = None,
) -> Iterator[PracticeRecord | Rejection | Remark]:
    """Stream the extraction as practice records, rejections and remarks (see module doc).

    ``on_bytes(n)`` is called now and then with the number of bytes read since the last call (progress).
    """
    with open_extraction(path) as (stream, _size, _name):
        yield from parse_rpps_stream(stream, specialties=specialties, on_bytes=on_bytes)


def parse_rpps_stream(
    stream: io.BufferedIOBase | io.RawIOBase,
    *,
    specialties: Specialties,
    on_bytes: Callable[[int], None] | None = None,
) -> Iterator[PracticeRecord | Rejection | Remark]:
    """The parser behind ``read_rpps`` working on any binary line stream."""
    header_line = stream.readline()
    read_line, unknown_specialty = _line_reader(_header_columns(header_line), specialties)
    report_bytes = on_bytes or _no_progress
    group_id: str | None = None
    group: dict[str, PracticeRecord] = {}
    pending_bytes = len(header_line)
    line_no = 1
    for raw in stream:
        line_no += 1
        pending_bytes += len(raw)
        if pending_bytes >= 1 << 20:
            report_bytes(pending_bytes)
            pending_bytes = 0
        record = read_line(raw, line_no)
        if not isinstance(record, PracticeRecord):
            yield record
            continue
        national = record.national_id
        if national != group_id:
            yield from group.values()
            group = {}
            group_id = national
        if unknown_specialty[0]:
            yield Remark("unknown_specialty", line_no, unknown_specialty[0])
            unknown_specialty[0] = ""
        key = record.place_key()
        existing = group.get(key)
        if existing is None:
            group[key] = record
        else:
            _merge_place_line(existing, record)
            yield Remark("merged_line", line_no)
    yield from group.values()
    if pending_bytes:
        report_bytes(pending_bytes)


def _no_progress(_bytes: int) -> None:
    pass


def _header_columns(header_line: bytes) -> _Columns:
    if not header_line:
        raise DataQualityError("RPPS extraction is empty (no header line)")
    try:
        header = header_line.decode("utf-8-sig").rstrip("\r\n").split("|")
    except UnicodeDecodeError as exc:
        raise DataQualityError(f"RPPS extraction header is not UTF-8: {exc}") from exc
    return _Columns(header)


def _rejection_names(cols: _Columns) -> tuple[Callable[[list[str]], str], Callable[[list[str]], str]]:
    """What a rejected line names, when it can be trusted: its national id (``key_of``) and its structure
    technical id (``place_of``), so the loader knows which offers the rejection concerns."""
    n = cols.count
    c_type, c_id, c_nat, c_tech = (cols.pos(x) for x in (
        "Type d'identifiant PP", "Identifiant PP", "Identification nationale PP",
        "Identifiant technique de la structure"))

    def key_of(fields: list[str]) -> str:
        """The national id a rejected line names, when its key columns still read and check out."""
        if len(fields) <= max(c_type, c_id, c_nat) or max(c_type, c_id, c_nat) >= n:
            return ""
        id_type, raw_id, national = fields[c_type].strip(), fields[c_id].strip(), fields[c_nat].strip()
        if check_national(id_type, raw_id, national):
            return ""
        national = national or (id_type + raw_id)
        return national if _KEY_RE.match(national) else ""

    def place_of(fields: list[str]) -> str:
        """The structure technical id of a rejected line that has the expected columns (else "")."""
        if not (len(fields) == n + 1 and fields[-1] == "" or len(fields) == n) or c_tech >= n:
            return ""
        place = fields[c_tech].strip()
        return place if _PLACE_RE.match(place) else ""

    return key_of, place_of


def _line_reader(cols: _Columns, specialties: Specialties
                 ) -> tuple[Callable[[bytes, int], PracticeRecord | Rejection | Remark], list[str]]:
    """The function that reads one line of the extraction: its practice record, or the rejection or
    remark the line makes. Built once per file: the column positions are closure variables, the
    cheapest reads in the per-line loop.

    Also returns a one-item list where it leaves the code of a specialty the TRE_R38 table does not
    know ("" otherwise): the caller reports it after flushing the previous professional's records,
    where the stream has always put that remark.
    """
    n = cols.count
    (c_type, c_id, c_nat, c_civ_ex_l, c_civ_l, c_last, c_first, c_prof, c_prof_l, c_sf_type, c_sf, c_sf_l,
     c_mode, c_siret, c_siren, c_finess, c_finess_ej, c_tech, c_rs, c_ens, c_cdest, c_cgeo, c_num, c_rep,
     c_tvoie, c_tvoie_l, c_voie, c_mention, c_cedex, c_cp, c_insee, c_city, c_country, c_tel, c_tel2, c_dept,
     c_sector, c_sector_l) = (
        cols.pos(x) for x in (
            "Type d'identifiant PP", "Identifiant PP", "Identification nationale PP",
            "Libellé civilité d'exercice", "Libellé civilité", "Nom d'exercice", "Prénom d'exercice",
            "Code profession", "Libellé profession", "Code type savoir-faire", "Code savoir-faire",
            "Libellé savoir-faire", "Code mode exercice", "Numéro SIRET site", "Numéro SIREN site",
            "Numéro FINESS site", "Numéro FINESS établissement juridique",
            "Identifiant technique de la structure", "Raison sociale site", "Enseigne commerciale site",
            "Complément destinataire (coord. structure)", "Complément point géographique (coord. structure)",
            "Numéro Voie (coord. structure)", "Indice répétition voie (coord. structure)",
            "Code type de voie (coord. structure)", "Libellé type de voie (coord. structure)",
            "Libellé Voie (coord. structure)", "Mention distribution (coord. structure)",
            "Bureau cedex (coord. structure)", "Code postal (coord. structure)",
            "Code commune (coord. structure)", "Libellé commune (coord. structure)",
            "Libellé pays (coord. structure)", "Téléphone (coord. structure)",
            "Téléphone 2 (coord. structure)", "Code Département (structure)", "Code secteur d'activité",
            "Libellé secteur d'activité",
        )
    )
    labels = specialties.labels
    professions = PROFESSIONS
    key_of, place_of = _rejection_names(cols)
    unknown_specialty = [""]

    def read_line(raw: bytes, line_no: int) -> PracticeRecord | Rejection | Remark:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            fields = raw.decode("latin-1").rstrip("\r\n").split("|")
            return Rejection("encoding_error", line_no, "line is not valid UTF-8", key=key_of(fields),
                             place=place_of(fields))
        text = text.rstrip("\r\n")
        if not text.strip():
            return Remark("blank_line", line_no)
        f = text.split("|")
        count = len(f)
        if count != n and not (count == n + 1 and f[-1] == ""):  # a missing trailing "|" alone is tolerated
            columns = count - 1 if f[-1] == "" else count
            return Rejection("wrong_column_count", line_no, f"{columns} columns, expected {n}", key=key_of(f))
        f.append("")                  # index n = absent optional column → always empty
        id_type = f[c_type].strip()
        raw_id = f[c_id].strip()
        national = f[c_nat].strip()
        reason = check_national(id_type, raw_id, national)
        if reason:
            # The key itself failed its check: it names no offer safely (deletions are capped instead).
            return Rejection(reason, line_no, f"{id_type}|{raw_id}", place=place_of(f[:-1]))
        profession = f[c_prof].strip()
        if profession not in professions:
            return Rejection("unknown_profession", line_no, profession or "(empty)", key=key_of(f),
                             place=place_of(f[:-1]))
        last_name = f[c_last].strip()
        if not last_name:
            return Rejection("missing_name", line_no, key=key_of(f), place=place_of(f[:-1]))
        specialty: tuple[str, str] | None = None
        if f[c_sf_type].strip() == "S" and f[c_sf].strip():
            code = f[c_sf].strip()
            label = labels.get(code)
            if label is None:
                unknown_specialty[0] = code
                label = f[c_sf_l].strip() or code
            specialty = (code, label)
        return PracticeRecord(
            source="rpps",
            line_no=line_no,
            id_type="rpps" if id_type == RPPS_TYPE else "adeli",
            raw_id=raw_id,
            national_id=national or (id_type + raw_id),
            last_name=last_name,
            first_name=f[c_first].strip(),
            civility=f[c_civ_ex_l].strip() or f[c_civ_l].strip(),
            profession_code=profession,
            profession_label=f[c_prof_l].strip() or professions[profession],
            specialties=[specialty] if specialty else [],
            exercise_mode=f[c_mode].strip(),
            technical_id=f[c_tech].strip(),
            structure_name=f[c_rs].strip(),
            enseigne=f[c_ens].strip(),
            siret=f[c_siret].strip(),
            siren=f[c_siren].strip(),
            finess=f[c_finess].strip(),
            finess_ej=f[c_finess_ej].strip(),
            sector_code=f[c_sector].strip(),
            sector_label=f[c_sector_l].strip(),
            departement=f[c_dept].strip(),
            address=Address(
                number=f[c_num].strip(),
                repetition=f[c_rep].strip(),
                street_type=f[c_tvoie_l].strip() or f[c_tvoie].strip(),
                street=f[c_voie].strip(),
                complement=" ".join(x for x in (f[c_cdest].strip(), f[c_cgeo].strip()) if x),
                distribution=f[c_mention].strip(),
                cedex_line=f[c_cedex].strip(),
                postcode=f[c_cp].strip(),
                insee=f[c_insee].strip(),
                city=f[c_city].strip(),
                country=f[c_country].strip(),
            ),
            phones=[p for p in (_phone(f[c_tel]), _phone(f[c_tel2])) if p],
        )

    return read_line, unknown_specialty


def _merge_place_line(existing: PracticeRecord, record: PracticeRecord) -> None:
    """Another savoir-faire line of the same place: merge, never lose a specialty or a phone."""
    for specialty in record.specialties:
        if specialty not in existing.specialties:
            existing.specialties.append(specialty)
    for phone in record.phones:
        if phone not in existing.phones:
            existing.phones.append(phone)


__all__ = ["ADELI_TYPE", "FILE_GLOB", "HEADER", "RPPS_TYPE", "extraction_date", "open_extraction",
           "parse_rpps_stream", "read_rpps"]
