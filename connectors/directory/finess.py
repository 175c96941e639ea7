"""The FINESS establishments stock file of Etalab: ``etalab-cs1100507-stock-<date>.csv``.

``;``-separated, Latin-1, no header: a metadata line ``finess;etalab;<n>;<date>``, then
``structureet;...`` lines (one per establishment) and ``geolocalisation;<nofinesset>;<x>;<y>;<source>;
<date>`` lines (its position, Lambert-93 metres in metropolitan France, UTM for overseas, named in the
source field). Positions are converted to WGS84 with pyproj.

The file is read as a stream. Only the categories the SAS shows (CPTS 604, maisons de santé 603,
centres de santé 124) are kept, so the establishments waiting for their ``geolocalisation`` line (which
comes after all ``structureet`` lines in the published file) are a small subset held in a dict; every
other establishment is counted (``other_category``) and forgotten at once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from functools import cache
from pathlib import Path

from pyproj import Transformer

from connectors.directory.nomenclatures import FINESS_KINDS
from connectors.directory.records import Address, Rejection, Remark, StructureRecord
from sas_core.errors import DataQualityError

#: The published encoding. Latin-1 decodes any byte, so a file saved in UTF-8 by a tool on the way
#: would read "successfully" with every accent garbled: the encoding is detected instead (``detect_encoding``).
ENCODING = "latin-1"

#: Columns of a ``structureet`` line after the tag.
STRUCTURE_COLUMNS: tuple[str, ...] = (
    "nofinesset", "nofinessej", "rs", "rslongue", "complrs", "compldistrib", "numvoie", "typvoie", "voie",
    "compvoie", "lieuditbp", "commune", "departement", "libdepartement", "ligneacheminement", "telephone",
    "telecopie", "categetab", "libcategetab", "categagretab", "libcategagretab", "siret", "codeape",
    "codemft", "libmft", "codesph", "libsph", "dateouv", "dateautor", "datemaj", "numuai",
)
_N = len(STRUCTURE_COLUMNS)
_I = {name: i + 1 for i, name in enumerate(STRUCTURE_COLUMNS)}  # +1: the tag is field 0

#: FINESS codes of the overseas départements → INSEE département prefix.
OVERSEAS_DEPARTEMENTS = {"9A": "971", "9B": "972", "9C": "973", "9D": "974", "9E": "975", "9F": "976"}

#: Projection named in the geolocalisation source field → EPSG code.
PROJECTIONS = {
    "LAMBERT_93": 2154,
    "UTM_N20": 5490,   # Guadeloupe, Martinique (RGAF09 / UTM 20N)
    "UTM_N22": 2972,   # Guyane (RGFG95 / UTM 22N)
    "UTM_S40": 2975,   # La Réunion (RGR92 / UTM 40S)
    "UTM_S38": 4471,   # Mayotte (RGM04 / UTM 38S)
    "UTM_N21": 4467,   # Saint-Pierre-et-Miquelon (RGSPM06 / UTM 21N)
}
_DIGITS = re.compile(r"\D+")
_ACHEMINEMENT = re.compile(r"^\s*(\d{5})\s+(.*)$")
_FINESS_RE = re.compile(r"^[0-9][0-9AB][0-9]{7}$")


@cache
def _transformer(epsg: int) -> Transformer:
    return Transformer.from_crs(f"EPSG:{epsg}", "EPSG:4326", always_xy=True)


def projection_of(source: str) -> int:
    """EPSG code of a geolocalisation source field (``1,ATLASANTE,100,IGN,BD_ADRESSE,V2.2,LAMBERT_93``)."""
    for token in reversed(source.split(",")):
        epsg = PROJECTIONS.get(token.strip().upper())
        if epsg:
            return epsg
    return 2154  # metropolitan default, as in the published file when the field is short


def to_wgs84(x: float, y: float, *, epsg: int = 2154) -> tuple[float, float]:
    """(lat, lon) in WGS84 of projected metres ``x``, ``y``."""
    lon, lat = _transformer(epsg).transform(x, y)
    return lat, lon


def insee_of(departement: str, commune: str) -> str:
    """INSEE commune code from FINESS ``departement`` + 3-digit ``commune``."""
    departement = departement.strip().upper()
    commune = commune.strip()
    if not commune:
        return ""
    if departement in OVERSEAS_DEPARTEMENTS:
        return "97" + commune.zfill(3)
    return departement.zfill(2) + commune.zfill(3)


def detect_encoding(path: Path | str) -> str:
    """``utf-8`` or ``cp1252`` (a superset of Latin-1 for text), read from the bytes of the whole file.

    Accented French in Latin-1 is practically never valid UTF-8, so a file that decodes as UTF-8 is
    UTF-8. Otherwise it must decode as Windows-1252 (Latin-1 plus its printable 0x80-0x9F characters);
    NUL bytes (UTF-16) or bytes undefined there make the file undecodable: ``DataQualityError``.
    """
    import codecs

    path = Path(path)
    utf8 = codecs.getincrementaldecoder("utf-8")()
    cp1252 = codecs.getincrementaldecoder("cp1252")()
    is_utf8, offset = True, 0
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            if b"\x00" in chunk:
                raise DataQualityError(f"{path.name}: undecodable FINESS file (NUL bytes: UTF-16 or binary?), "
                                       "expected Latin-1 or UTF-8 text")
            if is_utf8:
                try:
                    utf8.decode(chunk)
                except UnicodeDecodeError:
                    is_utf8 = False
            try:
                cp1252.decode(chunk)
            except UnicodeDecodeError as exc:
                if not is_utf8:
                    raise DataQualityError(
                        f"{path.name}: undecodable FINESS file: neither UTF-8 nor Latin-1/Windows-1252 "
                        f"(byte 0x{chunk[exc.start]:02x} at offset {offset + exc.start})") from exc
            offset += len(chunk)
    if is_utf8:
        try:
            utf8.decode(b"", final=True)
        except UnicodeDecodeError:
            is_utf8 = False  # cut in the middle of a character: not UTF-8 after all
    return "utf-8" if is_utf8 else "cp1252"


def stock_date(path: Path | str) -> datetime | None:
    """The date in ``etalab-cs1100507-stock-20250106-0336.csv`` (UTC midnight)."""
    match = re.search(r"stock-(\d{8})", Path(path).name)
    if not match:
        return None
    try:
        return datetime.strptime(match.group(1), "%Y%m%d").replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def read_finess(
    path: Path | str,
    *,
    categories: dict[str, str] | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> Iterator[StructureRecord | Rejection | Remark]:
    """Stream the establishments of ``categories`` (TRE_R66 code → offer kind) with their positions.

    Yields rejections as they are met, then the kept establishments once the file is read (their
    positions may come at the very end).
    """
    path = Path(path)
    if not path.is_file():
        raise DataQualityError(f"FINESS file not found: {path}")
    kinds = categories or FINESS_KINDS
    kept: dict[str, StructureRecord] = {}
    encoding = detect_encoding(path)  # the whole file decodes in it: no line can fail below
    with path.open("rb", buffering=1 << 20) as stream:
        first = stream.readline()
        _check_head(first.decode(encoding), path)
        line_no = 1
        pending = len(first)
        for raw in stream:
            line_no += 1
            pending += len(raw)
            if on_bytes is not None and pending >= 1 << 20:
                on_bytes(pending)
                pending = 0
            text = raw.decode(encoding).rstrip("\r\n")  # the whole file decoded in detect_encoding
            if not text.strip():
                yield Remark("blank_line", line_no)
                continue
            f = text.split(";")
            tag = f[0]
            if tag == "structureet":
                item = _structure_line(f, line_no, kinds)
                if item.__class__ is StructureRecord:
                    kept[item.finess] = item
                else:
                    yield item
            elif tag == "geolocalisation":
                yield from _position_line(f, line_no, kept)
            else:
                yield Rejection("unknown_line_type", line_no, tag[:30])
        if on_bytes is not None and pending:
            on_bytes(pending)
    yield from kept.values()


def _check_head(first_line: str, path: Path) -> None:
    head = first_line.lstrip("\ufeff").rstrip("\r\n").split(";")
    if not head or head[0] != "finess":
        raise DataQualityError(
            f"{path.name}: not an Etalab FINESS stock file (first line should be 'finess;etalab;…')"
        )


def _structure_line(f: list[str], line_no: int, kinds: dict[str, str]) -> StructureRecord | Rejection | Remark:
    """The establishment of a ``structureet`` line, or why it is not kept."""
    if len(f) != _N + 1:
        return Rejection("wrong_column_count", line_no, f"{len(f) - 1} columns, expected {_N}")
    finess = f[_I["nofinesset"]].strip()
    if not _FINESS_RE.match(finess):
        return Rejection("invalid_finess", line_no, finess or "(empty)")
    category = f[_I["categetab"]].strip()
    kind = kinds.get(category)
    if kind is None:
        return Remark("other_category", line_no, category)
    record = _structure(f, line_no=line_no, finess=finess, kind=kind, category=category)
    if not record.name:
        return Rejection("missing_name", line_no, finess)
    return record


def _position_line(f: list[str], line_no: int, kept: dict[str, StructureRecord]) -> Iterator[Rejection | Remark]:
    """Place the kept establishment a ``geolocalisation`` line is about (a generator: a line makes a
    remark and may make a rejection; its cost is small next to the projection's)."""
    if len(f) < 4:
        yield Rejection("wrong_column_count", line_no, f"{len(f) - 1} columns in geolocalisation")
        return
    record = kept.get(f[1].strip())
    yield Remark("position", line_no)  # counted as a line read, kept or not
    if record is None:
        return  # position of an establishment of another category
    try:
        x, y = float(f[2].replace(",", ".")), float(f[3].replace(",", "."))
    except ValueError:
        yield Rejection("invalid_coordinates", line_no, f"{f[2]!r},{f[3]!r}")
        return
    source = f[4] if len(f) > 4 else ""
    lat, lon = to_wgs84(x, y, epsg=projection_of(source))
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        yield Rejection("invalid_coordinates", line_no, f"{x},{y}")
        return
    record.lat, record.lon, record.geo_source = round(lat, 6), round(lon, 6), source


def _structure(f: list[str], *, line_no: int, finess: str, kind: str, category: str) -> StructureRecord:
    def v(name: str) -> str:
        return f[_I[name]].strip()

    departement = v("departement")
    postcode, city = "", ""
    match = _ACHEMINEMENT.match(v("ligneacheminement"))
    if match:
        postcode, city = match.group(1), match.group(2).strip()
    phones = [p for p in (_DIGITS.sub("", v("telephone")),) if len(p) >= 8]
    return StructureRecord(
        source="finess",
        line_no=line_no,
        finess=finess,
        finess_ej=v("nofinessej"),
        kind=kind,
        category_code=category,
        category_label=v("libcategetab"),
        name=v("rs") or v("rslongue"),
        long_name=v("rslongue"),
        siret=v("siret"),
        departement=OVERSEAS_DEPARTEMENTS.get(departement.upper(), departement),
        address=Address(
            number=v("numvoie"),
            repetition=v("compvoie"),
            street_type=v("typvoie"),
            street=v("voie"),
            complement=v("complrs"),
            distribution=" ".join(x for x in (v("compldistrib"), v("lieuditbp")) if x),
            cedex_line=v("ligneacheminement"),
            postcode=postcode,
            insee=insee_of(departement, v("commune")),
            city=city,
        ),
        phones=phones,
        updated=v("datemaj"),
    )
