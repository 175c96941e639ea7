"""The generator writes files the connectors read without a single rejection, deterministically."""

from collections import Counter
from datetime import datetime, timezone

import pytest

from connectors.directory.finess import read_finess
from connectors.directory.ids import luhn_is_valid
from connectors.directory.participation import read_participation
from connectors.directory.records import PracticeRecord, Rejection, StructureRecord
from connectors.directory.rpps import read_rpps
from simulator.demo_vendors import DEMO_VENDOR_IDS
from simulator.generate.directory import generate_directory

MOMENT = datetime(2025, 1, 15, 8, 30, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def generated(tmp_path_factory, reference_dir):
    out = tmp_path_factory.mktemp("gen")
    return generate_directory(out_dir=out, places=4000, departements=["14", "75", "13"], seed=7,
                              reference_dir=reference_dir, extracted_at=MOMENT)


def test_files_parse_without_rejections(generated, specialties, gazetteer):
    items = list(read_rpps(generated.rpps, specialties=specialties))
    records = [i for i in items if isinstance(i, PracticeRecord)]
    assert not [i for i in items if isinstance(i, Rejection)]
    assert len(records) == generated.places == 4000
    assert generated.rpps.name == "PS_LibreAcces_Personne_activite_202501150830.txt"
    assert all(luhn_is_valid(r.raw_id) for r in records if r.id_type == "rpps")
    assert {r.address.postcode[:2] for r in records if r.address.postcode} <= {"14", "75", "13"}
    doctors = [r for r in records if r.profession_code == "10"]
    mix = Counter(code for r in doctors for code, _ in r.specialties[:1])
    assert mix.most_common(1)[0][0] == "SM54" and mix["SM54"] > 0.4 * len(doctors)
    assert any(r.id_type == "adeli" for r in records)
    practitioners = Counter(r.national_id for r in records)
    assert any(n >= 2 for n in practitioners.values())                      # several places
    assert 0 < sum(not r.address.has_location_hint() for r in records) < 0.2 * len(records)
    assert any("CEDEX" in r.address.cedex_line for r in records)
    sos = [r for r in records if r.structure_name.startswith("SOS MEDECINS")]
    assert sos and {r.address.postcode[:2] for r in sos} <= {"14", "75", "13"}
    placed = [gazetteer.locate(postcode=r.address.postcode, insee=r.address.insee, city=r.address.city,
                               cedex_line=r.address.cedex_line) for r in records if r.address.has_location_hint()]
    assert sum(hasattr(p, "lat") for p in placed) > 0.97 * len(placed)


def test_finess_and_participation(generated):
    items = list(read_finess(generated.finess))
    kinds = Counter(i.kind for i in items if isinstance(i, StructureRecord))
    assert kinds["cpts"] >= 1 and kinds["msp"] >= 1 and kinds["centre"] >= 1
    assert not [i for i in items if isinstance(i, Rejection)]
    positioned = [i for i in items if isinstance(i, StructureRecord) and i.lat is not None]
    assert all(42 < i.lat < 50 and -1 < i.lon < 6 for i in positioned)
    table = read_participation(generated.participation)
    assert table.rejected_by_reason() == {}
    cpts = {i.finess for i in items if isinstance(i, StructureRecord) and i.kind == "cpts"}
    assert set(table.cpts_members()) <= cpts and table.cpts_members()
    vendors = {p.vendor for p in table.entries.values() if p.vendor}
    assert vendors and vendors <= set(DEMO_VENDOR_IDS)
    assert any(kind == "sos" for kind, _ in table.entries)


def test_same_seed_same_bytes(tmp_path, reference_dir):
    a = generate_directory(out_dir=tmp_path / "a", places=300, departements=["47"], seed=3,
                           reference_dir=reference_dir, extracted_at=MOMENT)
    b = generate_directory(out_dir=tmp_path / "b", places=300, departements=["47"], seed=3,
                           reference_dir=reference_dir, extracted_at=MOMENT)
    c = generate_directory(out_dir=tmp_path / "c", places=300, departements=["47"], seed=4,
                           reference_dir=reference_dir, extracted_at=MOMENT)
    for name in ("rpps", "finess", "participation"):
        assert getattr(a, name).read_bytes() == getattr(b, name).read_bytes()
    assert a.rpps.read_bytes() != c.rpps.read_bytes()


def test_zip_output_and_bounds(tmp_path, reference_dir, specialties):
    result = generate_directory(out_dir=tmp_path, places=100, departements=["2A"], seed=1,
                                reference_dir=reference_dir, extracted_at=MOMENT, zip_rpps=True)
    assert result.rpps.name == "PS_LibreAcces_202501150830.zip"
    assert sum(isinstance(i, PracticeRecord) for i in read_rpps(result.rpps, specialties=specialties)) == 100
    with pytest.raises(ValueError):
        generate_directory(out_dir=tmp_path, places=50, reference_dir=reference_dir)


def test_participation_shares(tmp_path, reference_dir):
    def participants(name: str, **shares) -> tuple[int, int]:
        result = generate_directory(out_dir=tmp_path / name, places=1500, departements=["47"], seed=5,
                                    reference_dir=reference_dir, extracted_at=MOMENT, **shares)
        rows = [line.split(";") for line in result.participation.read_text(encoding="utf-8").splitlines()[1:]]
        ps = [r for r in rows if r[0] == "ps"]
        return len(ps), sum(1 for r in ps if r[6])

    today, today_vendors = participants("today")
    target, target_vendors = participants("target", gp_participation=0.9, other_participation=0.5, vendor_share=0.95)
    assert target > 2 * today > 0
    assert target_vendors / target > 0.9 > today_vendors / today > 0.6
    assert participants("nobody", gp_participation=0.0, other_participation=0.0) == (0, 0)
    with pytest.raises(ValueError):
        generate_directory(out_dir=tmp_path / "bad", places=300, departements=["47"], reference_dir=reference_dir,
                           vendor_share=1.5)
