from collections import Counter

import pytest

from connectors.directory.finess import insee_of, projection_of, read_finess, stock_date, to_wgs84
from connectors.directory.records import Rejection, Remark, StructureRecord
from sas_core.errors import DataQualityError
from tests.unit.directory.conftest import FINESS_SAMPLE


def test_sample_keeps_sas_categories_with_positions():
    items = list(read_finess(FINESS_SAMPLE))
    kept = {i.finess: i for i in items if isinstance(i, StructureRecord)}
    assert {f: r.kind for f, r in kept.items()} == {"140012345": "cpts", "750054321": "msp", "420011111": "centre"}
    assert Counter(i.reason for i in items if isinstance(i, Rejection)) == {"wrong_column_count": 1}
    assert Counter(i.reason for i in items if isinstance(i, Remark)) == {"other_category": 1, "position": 3}
    cpts = kept["140012345"]
    # Lambert-93 of the sample → back to WGS84 near the point it was made from (Caen, -0.3635 / 49.1829).
    assert cpts.lat == pytest.approx(49.1829, abs=1e-4) and cpts.lon == pytest.approx(-0.3635, abs=1e-4)
    assert cpts.category_label.startswith("Communauté Professionnelle")  # Latin-1 decoded
    assert cpts.address.insee == "14118" and cpts.address.postcode == "14000"
    assert cpts.phones == ["0231123456"]
    assert kept["750054321"].lat is None  # no geolocalisation line: the loader falls back to the commune


def test_projection_names_and_overseas_insee():
    assert projection_of("1,ATLASANTE,100,IGN,BD_ADRESSE,V2.2,UTM_N20") == 5490
    assert projection_of("") == 2154
    lat, lon = to_wgs84(652469.0, 6862035.0)
    assert lat == pytest.approx(48.8566, abs=1e-3) and lon == pytest.approx(2.3522, abs=1e-3)
    # Pointe-à-Pitre in UTM 20N
    lat, lon = to_wgs84(657000.0, 1792000.0, epsg=5490)
    assert 16.0 < lat < 16.4 and -61.7 < lon < -61.3
    assert insee_of("9A", "120") == "97120"
    assert insee_of("2A", "4") == "2A004"
    assert stock_date(FINESS_SAMPLE).year == 2025


def test_a_file_that_is_not_finess_is_refused(tmp_path):
    bad = tmp_path / "etalab-cs1100507-stock-20250115-0336.csv"
    bad.write_text("hello;world\n", encoding="latin-1")
    with pytest.raises(DataQualityError, match="not an Etalab FINESS"):
        list(read_finess(bad))


def test_the_encoding_is_detected_and_an_undecodable_file_refused(tmp_path):
    from connectors.directory.finess import detect_encoding

    text = FINESS_SAMPLE.read_text(encoding="latin-1")
    assert any(ord(c) > 127 for c in text)  # the sample has accents: the check below means something
    utf8 = tmp_path / "utf8.csv"
    utf8.write_text(text, encoding="utf-8")
    assert detect_encoding(FINESS_SAMPLE) == "cp1252" and detect_encoding(utf8) == "utf-8"
    assert [r.name for r in read_finess(utf8) if isinstance(r, StructureRecord)] == \
           [r.name for r in read_finess(FINESS_SAMPLE) if isinstance(r, StructureRecord)]
    for name, blob in (("bad.csv", FINESS_SAMPLE.read_bytes().replace(b";", b";\x81", 1)),
                       ("utf16.csv", text.encode("utf-16"))):
        (tmp_path / name).write_bytes(blob)
        with pytest.raises(DataQualityError, match="undecodable FINESS file"):
            list(read_finess(tmp_path / name))
