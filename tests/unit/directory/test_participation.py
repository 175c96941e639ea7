import pytest

from connectors.directory.participation import parse_participation, read_participation
from sas_core.errors import DataQualityError
from tests.unit.directory.conftest import PARTICIPATION_SAMPLE


def test_sample():
    table = read_participation(PARTICIPATION_SAMPLE)
    martin = table.get("ps", "810001234565")
    assert martin.participates and martin.cpts_finess == "140012345" and martin.accepts_beyond
    assert martin.beyond_phone == "0612345678" and martin.vendor == "agendomed" and martin.convention_sector == "1"
    assert table.get("sos", "S10000000000001").opening_hours.startswith("lun-ven")
    assert not table.get("ps", "0750912345").participates
    assert table.rejected_by_reason() == {"invalid_identifier": 1}
    assert table.cpts_members() == {"140012345": 1}
    assert table.lines == 7


def test_bad_lines_are_rejected_with_reasons():
    text = ("kind;identifier;participates;cpts_finess;accepts_beyond;beyond_phone;vendor;convention_sector;"
            "opening_hours\n"
            "doctor;810001234565;1;;0;;;;\n"
            "ps;810001234565;maybe;;0;;;;\n"
            "ps;810001234565;1;;0;;;7;\n"
            "ps;810001234565;1\n")
    table = parse_participation(text)
    assert table.rejected_by_reason() == {"unknown_kind": 1, "invalid_boolean": 1, "invalid_convention_sector": 1,
                                          "wrong_column_count": 1}
    assert table.entries == {}


def test_wrong_header_is_refused():
    with pytest.raises(DataQualityError, match="expected header"):
        parse_participation("a;b;c\n")
