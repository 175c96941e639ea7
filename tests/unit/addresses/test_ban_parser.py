"""The BAN export parser (``connectors.addresses``): exact header, plain or gzip, bad lines by reason,
match keys that meet the RPPS address fields, and the generator's address file placed inside communes."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from connectors.addresses import (
    BAN_HEADER,
    AddressRecord,
    address_key,
    normalize_street,
    read_ban,
    street_key,
    suggest_text,
)
from connectors.directory.records import Rejection
from sas_core.errors import DataQualityError

HEADER = ";".join(BAN_HEADER)
GOOD = ("33063_4370_00012;33063_4370;12;;Rue Sainte-Catherine;33000;33063;Bordeaux;;;417600.12;6421800.34;"
        "-0.573120;44.839510;entrée;;;BORDEAUX;RUE SAINTE CATHERINE;commune;commune;1;33063000AB0012")
GOOD_BIS = ("33063_4370_00012_bis;33063_4370;12;bis;Rue Sainte-Catherine;33000;33063;Bordeaux;;;417600.12;"
            "6421800.34;-0.573100;44.839530;entrée;;;BORDEAUX;RUE SAINTE CATHERINE;commune;commune;0;")


def write(tmp_path: Path, lines: list[str], *, gz: bool = False) -> Path:
    text = "\n".join(lines) + "\n"
    if gz:
        path = tmp_path / "adresses-33.csv.gz"
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path = tmp_path / "adresses-33.csv"
        path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_reads_the_export_plain_or_gzip(tmp_path, gz):
    items = list(read_ban(write(tmp_path, [HEADER, GOOD, GOOD_BIS], gz=gz)))
    assert [type(i) for i in items] == [AddressRecord, AddressRecord]
    first, second = items
    assert (first.id, first.number, first.rep, first.street, first.postcode, first.insee, first.city) == \
        ("33063_4370_00012", "12", "", "Rue Sainte-Catherine", "33000", "33063", "Bordeaux")
    assert (first.lat, first.lon) == (44.83951, -0.57312) and first.certified and not second.certified
    assert first.label() == "12 Rue Sainte-Catherine 33000 Bordeaux"
    assert second.address_key() == "33063|rue sainte catherine|12bis" != first.address_key()
    assert first.street_key() == second.street_key() == "33063|rue sainte catherine"


def test_bad_lines_are_counted_by_reason_never_dropped(tmp_path):
    def line(**changes) -> str:
        values = dict(zip(BAN_HEADER, GOOD.split(";"), strict=True))
        values.update(changes)
        return ";".join(values[name] for name in BAN_HEADER)

    lines = [HEADER, GOOD, "33063_x;too;few", line(id=""), line(code_insee="3306"), line(nom_voie=""),
             line(numero="12a"), line(lat="north"), line(lon="200"), line(lat="0", lon="0"),
             line(numero="99999", id="33063_4370_99999")]
    items = list(read_ban(write(tmp_path, lines)))
    reasons = [i.reason for i in items if isinstance(i, Rejection)]
    assert reasons == ["wrong_column_count", "missing_id", "bad_insee", "missing_street", "bad_number",
                       "bad_coordinates", "coordinates_out_of_range", "coordinates_out_of_range"]
    records = [i for i in items if isinstance(i, AddressRecord)]
    # 99999 is BAN's "no number" (a lieu-dit position): kept, as a street-level point.
    assert len(records) == 2 and records[1].number == "" and records[1].address_key() == ""
    assert len(items) == len(lines) - 1   # every line accounted for


def test_a_file_that_is_not_the_export_is_refused(tmp_path):
    rpps_like = tmp_path / "adresses-33.csv"
    rpps_like.write_text("Type d'identifiant PP|Identifiant PP|\n8|10001234567|\n", encoding="utf-8")
    with pytest.raises(DataQualityError, match="not a BAN adresses CSV"):
        list(read_ban(rpps_like))
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes((HEADER + "\n" + GOOD.replace("entrée", "entr\xe9e") + "\n").encode("latin-1"))
    with pytest.raises(DataQualityError, match="not UTF-8"):
        list(read_ban(latin1))
    with pytest.raises(DataQualityError, match="not found"):
        list(read_ban(tmp_path / "missing.csv"))


def test_header_is_read_by_name(tmp_path):
    # A later export that moves or adds columns must not shift the fields.
    header = list(BAN_HEADER)
    values = dict(zip(BAN_HEADER, GOOD.split(";"), strict=True))
    header = ["extra", *reversed(header)]
    row = ["x", *(values[name] for name in reversed(BAN_HEADER))]
    (record,) = read_ban(write(tmp_path, [";".join(header), ";".join(row)]))
    assert (record.id, record.lat, record.lon, record.street) == ("33063_4370_00012", 44.83951, -0.57312,
                                                                  "Rue Sainte-Catherine")


def test_match_keys_meet_between_rpps_and_ban_spellings():
    # RPPS: street type code or label + upper-case unaccented name; BAN: accented mixed case.
    assert street_key("33063", "AV DU GAL DE GAULLE") == street_key("33063", "Avenue du Général de Gaulle")
    assert street_key("47001", "Rue DE L EGLISE") == street_key("47001", "Rue de l'Église")
    assert street_key("75115", "BD ST MICHEL") == street_key("75115", "Boulevard Saint-Michel")
    assert (address_key("33063", "RUE X", "012", "B") == address_key("33063", "Rue X", "12", "bis")
            == "33063|rue x|12bis")
    assert address_key("33063", "Rue X", "12") != address_key("33063", "Rue X", "12", "T")
    assert normalize_street("") == "" and street_key("", "Rue X") == ""
    assert suggest_text("12 bis av. du Gal de Gaulle, 33000 Bordeaux") == "12 bis avenue general gaulle 33000 bordeaux"
