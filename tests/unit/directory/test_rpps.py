import io
import zipfile
from collections import Counter
from datetime import datetime, timezone

import pytest

from connectors.directory.records import PracticeRecord, Rejection, Remark
from connectors.directory.rpps import HEADER, extraction_date, open_extraction, parse_rpps_stream, read_rpps
from sas_core.errors import DataQualityError
from tests.unit.directory.conftest import RPPS_SAMPLE


def _split(items):
    records = [i for i in items if isinstance(i, PracticeRecord)]
    rejections = Counter(i.reason for i in items if isinstance(i, Rejection))
    remarks = Counter(i.reason for i in items if isinstance(i, Remark))
    return records, rejections, remarks


def test_sample_records_rejections_and_merges(specialties):
    records, rejections, remarks = _split(list(read_rpps(RPPS_SAMPLE, specialties=specialties)))
    assert rejections == {"invalid_rpps_key": 1, "wrong_column_count": 1, "unknown_profession": 1}
    assert remarks == {"merged_line": 1}
    # 13 data lines = 9 practice records + 1 merged savoir-faire line + 3 rejected: none unaccounted for
    assert len(records) == 9
    martin = [r for r in records if r.last_name == "MARTIN"]
    assert [r.technical_id for r in martin] == ["R10000000000101", "R10000000000102"]
    assert martin[0].specialties == [("SM54", "Médecine générale (SM)"), ("SM59", "Médecine d'urgence (SM)")]
    assert martin[0].national_id == "810001234565" and martin[0].id_type == "rpps"
    assert martin[0].address.street_line() == "12 bis Rue DE LA PAIX"
    assert martin[0].phones == ["0231000000"]


def test_adeli_and_accents_are_kept(specialties):
    records, _, _ = _split(list(read_rpps(RPPS_SAMPLE, specialties=specialties)))
    adeli = next(r for r in records if r.id_type == "adeli")
    assert adeli.national_id == "0750912345" and adeli.profession_code == "91"
    durand = next(r for r in records if r.last_name == "DURAND")
    assert durand.first_name == "ÉLISE" and durand.address.cedex_line == "14052 CAEN CEDEX 4"


def test_zip_is_read_like_the_text_file(tmp_path, specialties):
    archive = tmp_path / "PS_LibreAcces_202501150830.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("PS_LibreAcces_Dipl_AutExerc_202501150830.txt", "other file\n")
        z.write(RPPS_SAMPLE, RPPS_SAMPLE.name)
    from_zip = [type(i).__name__ + getattr(i, "reason", "") for i in read_rpps(archive, specialties=specialties)]
    plain = [type(i).__name__ + getattr(i, "reason", "") for i in read_rpps(RPPS_SAMPLE, specialties=specialties)]
    assert from_zip == plain


def test_zip_without_the_extraction_is_refused(tmp_path, specialties):
    archive = tmp_path / "PS_LibreAcces_202501150830.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("readme.txt", "nothing")
    with pytest.raises(DataQualityError, match="no PS_LibreAcces_Personne_activite"):
        list(read_rpps(archive, specialties=specialties))


def test_header_without_needed_columns_is_refused(specialties):
    stream = io.BytesIO(b"a|b|c|\n1|2|3|\n")
    with pytest.raises(DataQualityError, match="header lacks"):
        list(parse_rpps_stream(stream, specialties=specialties))


def test_trailing_pipe_optional_blank_lines_and_bad_utf8_are_counted(specialties):
    header = "|".join(HEADER) + "|\n"
    fields = [""] * len(HEADER)
    fields[0], fields[1], fields[2], fields[7], fields[9] = "8", "10001234565", "810001234565", "MARTIN", "10"
    fields[35], fields[37] = "14000", "CAEN"
    without_pipe = "|".join(fields) + "\n"
    data = (header + without_pipe + "\n").encode() + b"8|\xff\xfe|broken\n"
    items = list(parse_rpps_stream(io.BytesIO(data), specialties=specialties))
    records, rejections, remarks = _split(items)
    assert len(records) == 1
    assert rejections == {"encoding_error": 1}
    assert remarks == {"blank_line": 1}


def test_unknown_specialty_is_kept_with_a_remark(specialties):
    fields = [""] * len(HEADER)
    fields[0], fields[1], fields[2], fields[7], fields[9] = "8", "10001234565", "810001234565", "MARTIN", "10"
    fields[13], fields[15], fields[16] = "S", "SM99", "Spécialité future"
    data = ("|".join(HEADER) + "|\n" + "|".join(fields) + "|\n").encode()
    records, _, remarks = _split(list(parse_rpps_stream(io.BytesIO(data), specialties=specialties)))
    assert records[0].specialties == [("SM99", "Spécialité future")]
    assert remarks == {"unknown_specialty": 1}


def test_extraction_date_from_names():
    assert extraction_date(RPPS_SAMPLE) == datetime(2025, 1, 15, 8, 30, tzinfo=timezone.utc)
    assert extraction_date("PS_LibreAcces_202501150830.zip") == datetime(2025, 1, 15, 8, 30, tzinfo=timezone.utc)
    assert extraction_date("whatever.txt") is None


def test_rejected_lines_name_their_professional_and_place_when_they_can(specialties):
    # The loader keeps the offers a rejected line names instead of deleting them (issue 14, point 4).
    rejections = {r.reason: r for r in read_rpps(RPPS_SAMPLE, specialties=specialties) if isinstance(r, Rejection)}
    # Right columns, unknown profession: both its national id and its structure technical id read.
    assert rejections["unknown_profession"].key and rejections["unknown_profession"].place
    # Its RPPS number fails the check digit: it names no one, but its place column is where it should be.
    assert rejections["invalid_rpps_key"].key == "" and rejections["invalid_rpps_key"].place
    # Columns shifted: the identifier columns come first and still read; the place column may have moved.
    assert rejections["wrong_column_count"].key and rejections["wrong_column_count"].place == ""


def test_a_truncated_zip_is_a_damaged_archive_not_a_text_file(tmp_path):
    path = tmp_path / "PS_LibreAcces_202501150830.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.write(RPPS_SAMPLE, RPPS_SAMPLE.name)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataQualityError, match=r"damaged zip archive \(archive zip endommagée"), \
            open_extraction(path):
        pass
