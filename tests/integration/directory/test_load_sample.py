"""The real-format sample loads with the expected offers, rejections and geocoding precision; an
identical reload changes nothing; a full load removes what disappeared, an incremental one does not."""

from __future__ import annotations

import pytest

from indexer.directory import load_directory
from sas_core.errors import DataQualityError
from tests.unit.directory.conftest import FINESS_SAMPLE, PARTICIPATION_SAMPLE, RPPS_SAMPLE

MARTIN_CAEN = "ps-810001234565-R10000000000101"
MARTIN_PARIS = "ps-810001234565-R10000000000102"


def _offers(es, prefix):
    es.indices.refresh(index=f"{prefix}-offers")
    hits = es.search(index=f"{prefix}-offers", size=1000, version=True, query={"match_all": {}})["hits"]["hits"]
    return {h["_id"]: h for h in hits}


@pytest.fixture(scope="module")
def first_load(es, dir_settings, dir_indices, geocoder):
    summary = load_directory(settings=dir_settings, es=es, rpps_path=RPPS_SAMPLE, finess_path=FINESS_SAMPLE,
                             participation_path=PARTICIPATION_SAMPLE, full=True, progress=False,
                             geocoder=geocoder, threshold=0.5)
    return summary, _offers(es, dir_settings.index_prefix)


def test_summary_counts_every_line(first_load):
    summary, _ = first_load
    data = summary.to_dict()
    assert data["status"] == "success"
    assert data["rejected_by_reason"] == {"invalid_rpps_key": 1, "unknown_profession": 1, "wrong_column_count": 2,
                                          "participation:invalid_identifier": 1}
    assert data["kinds"] == {"ps": 9, "sos": 1, "cpts": 1, "msp": 1, "centre": 1}
    assert data["places"] == 13 and data["created"] == 13
    assert data["not_geocoded_by_reason"] == {"no_address": 1}
    assert data["geo_precision"] == {"municipality": 9, "postcode": 1, "address": 2}
    # 13 RPPS lines + 5 FINESS structure lines + 3 positions + 7 participation lines
    assert data["lines_read"] == 13 + 5 + 3 + 7


def test_practitioner_with_two_places_and_merged_specialties(first_load):
    _, offers = first_load
    caen = offers[MARTIN_CAEN]["_source"]
    assert caen["specialties"] == ["SM54", "SM59"]
    assert caen["specialty_labels"][0] == "Médecine générale (SM)"
    assert caen["national_id"] == "810001234565" and caen["national_id_type"] == "rpps"
    assert caen["address"]["insee"] == "14118" and caen["departement"] == "14" and caen["territory"] == "SAS-14"
    assert caen["geo_precision"] == "municipality" and caen["location"]["lat"] == pytest.approx(49.18, abs=0.05)
    assert caen["sas"] == {"participates": True, "cpts_finess": "140012345", "cpts_name": "CPTS CAEN NORD",
                           "accepts_beyond": True, "beyond_phone": "0612345678", "vendor": "agendomed"}
    assert caen["convention_sector"] == "1" and caen["source_updated_at"].startswith("2025-01-15T08:30")
    paris = offers[MARTIN_PARIS]["_source"]
    assert paris["address"]["insee"] == "75115" and paris["territory"] == "SAS-75"


def test_adeli_cedex_paris_and_folded_names(first_load):
    _, offers = first_load
    adeli = next(o["_source"] for o in offers.values() if o["_source"].get("national_id_type") == "adeli")
    assert adeli["national_id"] == "0750912345" and adeli["address"]["insee"] == "75056"
    assert adeli["sas"]["participates"] is False
    durand = next(o["_source"] for o in offers.values() if o["_source"].get("last_name") == "DURAND")
    assert durand["first_name_folded"] == "elise" and durand["name_folded"] == "elise durand"
    assert durand["geo_precision"] == "municipality" and durand["departement"] == "14"  # 14052 CAEN CEDEX 4
    assert durand["address"]["cedex"] == "14052 CAEN CEDEX 4"
    nurse = next(o["_source"] for o in offers.values() if o["_source"].get("last_name") == "GARCIA")
    assert nurse["address"]["postcode"] == "42000" and nurse["territory"] == "SAS-42"


def test_unplaceable_and_postcode_only(first_load):
    _, offers = first_load
    hospital = next(o["_source"] for o in offers.values() if o["_source"].get("last_name") == "BERNARD")
    assert hospital["location"] is None and hospital["geo_precision"] is None   # never a made-up point
    faure = next(o["_source"] for o in offers.values() if o["_source"].get("last_name") == "FAURE")
    assert faure["geo_precision"] == "postcode" and faure["departement"] == "01"


def test_structures_and_sos(first_load):
    _, offers = first_load
    sos = offers["sos-S10000000000001"]["_source"]
    assert sos["kind"] == "sos" and sos["member_count"] == 2 and sos["sos"]["association_siret"] == "42000000100017"
    assert sos["sas"]["vendor"] == "sosplanning" and sos["sos"]["opening_hours"].startswith("lun-ven")
    cpts = offers["cpts-140012345"]["_source"]
    assert cpts["geo_source"] == "finess" and cpts["geo_precision"] == "address" and cpts["member_count"] == 1
    assert cpts["sas"]["beyond_phone"] == "0231123456"
    msp = offers["msp-750054321"]["_source"]
    assert msp["geo_source"] == "gazetteer" and msp["address"]["insee"] == "75115"
    assert "centre-420011111" in offers and not any(k.endswith("140000100") for k in offers)  # CHU not kept


def test_geo_search_only_sees_placed_offers(first_load, es, dir_settings):
    body = {"query": {"geo_distance": {"distance": "20km", "location": {"lat": 49.18, "lon": -0.37}}}}
    hits = es.search(index=f"{dir_settings.index_prefix}-offers", size=50, **body)["hits"]["hits"]
    ids = {h["_id"] for h in hits}
    assert MARTIN_CAEN in ids and "sos-S10000000000001" in ids and MARTIN_PARIS not in ids


def test_identical_reload_changes_nothing(first_load, es, dir_settings, geocoder):
    _, before = first_load
    summary = load_directory(settings=dir_settings, es=es, rpps_path=RPPS_SAMPLE, finess_path=FINESS_SAMPLE,
                             participation_path=PARTICIPATION_SAMPLE, full=True, progress=False,
                             geocoder=geocoder, threshold=0.5)
    assert (summary.unchanged, summary.indexed, summary.deleted) == (13, 0, 0)
    after = _offers(es, dir_settings.index_prefix)
    assert {k: v["_version"] for k, v in after.items()} == {k: v["_version"] for k, v in before.items()}
    runs = es.search(index=f"{dir_settings.index_prefix}-harvest_runs", query={"term": {"kind": "directory"}},
                     size=10)["hits"]["hits"]
    assert any(r["_source"]["unchanged"] == 13 and r["_source"]["status"] == "success" for r in runs)


def test_full_load_removes_what_disappeared_incremental_does_not(first_load, es, dir_settings, geocoder, tmp_path):
    lines = RPPS_SAMPLE.read_text(encoding="utf-8").splitlines(keepends=True)
    smaller = tmp_path / RPPS_SAMPLE.name
    smaller.write_text("".join(line for line in lines if "|FAURE|" not in line), encoding="utf-8")
    faure = next(k for k, v in first_load[1].items() if v["_source"].get("last_name") == "FAURE")
    summary = load_directory(settings=dir_settings, es=es, rpps_path=smaller, full=False, progress=False,
                             geocoder=geocoder, threshold=0.5)
    assert summary.deleted == 0 and faure in _offers(es, dir_settings.index_prefix)
    # Incremental, without participation: the sas blocks stay as they were (partial update, noop).
    assert summary.unchanged == 9 and summary.indexed == 0
    summary = load_directory(settings=dir_settings, es=es, rpps_path=smaller, finess_path=FINESS_SAMPLE,
                             participation_path=PARTICIPATION_SAMPLE, full=True, progress=False,
                             geocoder=geocoder, threshold=0.5)
    assert summary.deleted == 1 and faure not in _offers(es, dir_settings.index_prefix)
    # Put it back for the other tests of the module.
    load_directory(settings=dir_settings, es=es, rpps_path=RPPS_SAMPLE, finess_path=FINESS_SAMPLE,
                   participation_path=PARTICIPATION_SAMPLE, full=True, progress=False, geocoder=geocoder,
                   threshold=0.5)


def test_rejected_share_above_threshold_fails_without_deleting(first_load, es, dir_settings, geocoder, tmp_path):
    broken = tmp_path / RPPS_SAMPLE.name
    lines = RPPS_SAMPLE.read_text(encoding="utf-8").splitlines(keepends=True)
    broken.write_text(lines[0] + "".join(line.replace("|10|Médecin|", "|77|Inconnu|") for line in lines[1:]),
                      encoding="utf-8")
    count_before = es.count(index=f"{dir_settings.index_prefix}-offers")["count"]
    with pytest.raises(DataQualityError, match="exceed the threshold of 20.0%"):
        load_directory(settings=dir_settings, es=es, rpps_path=broken, full=True, progress=False,
                       geocoder=geocoder, threshold=0.2)
    es.indices.refresh(index=f"{dir_settings.index_prefix}-offers")
    assert es.count(index=f"{dir_settings.index_prefix}-offers")["count"] == count_before
    runs = es.search(index=f"{dir_settings.index_prefix}-harvest_runs", size=20,
                     query={"term": {"status": "failed"}})["hits"]["hits"]
    assert any("unknown_profession" in r["_source"]["errors"][0] for r in runs)
    settings = es.indices.get_settings(index=f"{dir_settings.index_prefix}-offers")
    assert next(iter(settings.body.values()))["settings"]["index"].get("refresh_interval") != "-1"


def test_zip_of_the_extraction_loads_the_same(first_load, es, dir_settings, geocoder, tmp_path):
    import zipfile

    archive = tmp_path / "PS_LibreAcces_202501150830.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(RPPS_SAMPLE, RPPS_SAMPLE.name)
    summary = load_directory(settings=dir_settings, es=es, rpps_path=archive, finess_path=FINESS_SAMPLE,
                             participation_path=PARTICIPATION_SAMPLE, full=True, progress=False,
                             geocoder=geocoder, threshold=0.5)
    assert summary.places == 13 and summary.unchanged == 13 and summary.indexed == 0
