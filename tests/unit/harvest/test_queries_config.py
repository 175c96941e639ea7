"""The three searches' parameters, batching, and the vendors file."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from connectors.vendors.config import find_vendor, load_vendors, parse_vendors
from connectors.vendors.queries import batches, practitioner_slot_search, sos_schedule_search, split_ids
from sas_core.errors import ConfigurationError

START = datetime(2024, 6, 12, 14, 20, tzinfo=timezone.utc)
END = datetime(2024, 6, 14, 14, 20, tzinfo=timezone.utc)


def test_int_r01_parameters():
    params = practitioner_slot_search(national_ids=["810002909371", "810100050075"], start=START, end=END)
    assert params == [
        ("start", "ge2024-06-12T14:20:00+00:00"),
        ("start", "le2024-06-14T14:20:00+00:00"),
        ("schedule.actor:Practitioner.identifier",
         "urn:oid:1.2.250.1.71.4.2.1|810002909371,urn:oid:1.2.250.1.71.4.2.1|810100050075"),
        ("status", "free"),
        ("_include", "Slot:schedule"),
        ("_include:iterate", "Schedule:actor"),
        ("_count", "1000"),
    ]


def test_int_r04_adds_the_cpts_includes_and_local_offset():
    params = practitioner_slot_search(national_ids=["810002909371"], start=START, end=END, with_cpts=True,
                                      offset="+02:00")
    assert ("start", "ge2024-06-12T16:20:00+02:00") in params
    assert ("_include", "Slot:service-type-reference") in params
    assert ("_include:iterate", "HealthcareService:organization") in params


def test_sos_parameters():
    # The directory's bare SIRETs go out in the guide's form ``3`` + SIRET (SIRET-invariant
    # ``^3[0-9]{14}$``); an id already prefixed is not prefixed twice.
    params = sos_schedule_search(association_ids=["34173748400020", "392080466300010"], start=START, end=END)
    assert params[:6] == [
        ("_revinclude", "Slot:schedule"),
        ("_include", "Schedule:actor:Location"),
        ("_include:iterate", "Location:organization"),
        ("_has:Slot:schedule:start", "ge2024-06-12T14:20:00+00:00"),
        ("_has:Slot:schedule:start", "le2024-06-14T14:20:00+00:00"),
        ("_has:Slot:schedule:status", "free"),
    ]
    assert params[6] == ("actor:Location.organization.identifier",
                         "urn:oid:1.2.250.1.71.4.2.2|334173748400020,urn:oid:1.2.250.1.71.4.2.2|392080466300010")


def test_at_most_25_ids_per_request():
    ids = [f"8{i:011d}" for i in range(60)] + ["800000000001"]   # one duplicate
    chunks = list(batches(ids))
    assert [len(c) for c in chunks] == [25, 25, 10]
    with pytest.raises(ValueError):
        practitioner_slot_search(national_ids=ids[:26], start=START, end=END)
    with pytest.raises(ValueError):
        list(batches(ids, 26))


def test_split_ids_accepts_encoded_and_bare_values():
    assert split_ids("urn:oid:1.2.250.1.71.4.2.1|810002909371,810100050075,other|1",
                     system="urn:oid:1.2.250.1.71.4.2.1") == ["810002909371", "810100050075"]


def test_vendors_file_defaults_and_validation(tmp_path):
    path = tmp_path / "vendors.yaml"
    path.write_text(
        "defaults: {timeout_s: 5}\n"
        "vendors:\n"
        "  - name: acme\n"
        "    base_url: https://fhir.acme.example/sas/\n"
        "    use_cases: [ps, cpts]\n"
        "    roster: ['810100050075']\n"
        "    tls: {cert: certs/client.pem, key: certs/client.key, ca: certs/ca.pem}\n"
        "    concurrency: 8\n"
        "  - name: sos-only\n"
        "    base_url: http://127.0.0.1:8400/sos/fhir\n"
        "    use_cases: [sos]\n"
        "    roster: ['334173748400020']\n"
    )
    acme, sos = load_vendors(path)
    assert acme.base_url == "https://fhir.acme.example/sas" and acme.timeout_s == 5 and acme.concurrency == 8
    assert acme.practitioner_search == "cpts" and acme.practitioner_ids == ["810100050075"]
    assert acme.tls.cert == tmp_path / "certs" / "client.pem"          # relative to the file
    assert acme.incremental_every_min == 2 and acme.full_every_min == 60 and acme.batch_size == 25
    # SOS rosters are kept in the directory's bare form whichever form the file uses; 10 SIRETs per request.
    assert sos.sos_ids == ["34173748400020"] and sos.practitioner_ids == [] and sos.practitioner_search is None
    assert sos.sos_batch_size == 10 and acme.sos_batch_size == 10
    assert find_vendor([acme, sos], "sos-only") is sos
    with pytest.raises(ConfigurationError, match="unknown vendor"):
        find_vendor([acme], "nope")


@pytest.mark.parametrize("data, message", [
    ({"vendors": [{"name": "a", "base_url": "ftp://x"}]}, "base_url"),
    ({"vendors": [{"name": "A b", "base_url": "http://x"}]}, "name"),
    ({"vendors": [{"name": "a", "base_url": "http://x", "use_cases": ["pharmacy"]}]}, "use_cases"),
    ({"vendors": [{"name": "a", "base_url": "http://x", "batch_size": 30}]}, "batch_size"),
    ({"vendors": [{"name": "a", "base_url": "http://x"}, {"name": "a", "base_url": "http://y"}]}, "duplicate"),
    ({"vendors": [{"name": "a", "base_url": "http://x", "colour": "red"}]}, "colour"),
])
def test_vendors_file_errors_are_clear(data, message):
    with pytest.raises(ConfigurationError, match=message):
        parse_vendors(data)


def test_missing_vendors_file(tmp_path):
    assert load_vendors(None) == []
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_vendors(tmp_path / "nope.yaml")
