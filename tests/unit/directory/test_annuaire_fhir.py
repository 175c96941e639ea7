"""The Annuaire Santé FHIR connector against a local server that serves Bundles of the real shape."""

from collections import Counter
from datetime import datetime, timezone
from urllib.parse import parse_qs, urlparse

import pytest

from connectors.directory.annuaire_fhir import AnnuaireFhirClient
from connectors.directory.records import PracticeRecord, Rejection, Remark
from sas_core.errors import BackendUnavailable, ConfigurationError
from tests.unit.directory.fhir_server import API_KEY, sample_state


def _run(server, specialties, **kwargs):
    with AnnuaireFhirClient(server.url + "/fhir", api_key=API_KEY, page_size=2, attempts=2) as client:
        items = list(client.practice_records(specialties=specialties, **kwargs))
        return items, client.requests


def test_pages_includes_and_mapping(local_server, specialties):
    server = local_server(sample_state().handler())
    items, requests = _run(server, specialties)
    records = [i for i in items if isinstance(i, PracticeRecord)]
    assert Counter(i.reason for i in items if isinstance(i, Rejection)) == {"invalid_rpps_key": 1,
                                                                            "unknown_profession": 1}
    assert Counter(i.reason for i in items if isinstance(i, Remark)) == {"inactive_role": 1}
    assert [r.national_id[:1] for r in records] == ["8", "8", "8", "0"]
    first = records[0]
    assert (first.last_name, first.first_name, first.civility) == ("MARTIN", "Paul", "Docteur")
    assert first.specialties == [("SM54", "Médecine générale (SM)")]
    assert first.address.street == "12 bis rue de la Paix" and first.address.postcode == "14000"
    assert first.siret == "81000123400016" and first.technical_id == "o1" and first.phones == ["0231456789"]
    assert first.updated == "2025-01-05T08:00:00Z" and first.source == "annuaire_fhir"
    second = records[1]
    assert second.finess == "750054321" and second.address.city == "PARIS"   # read by id: not included
    assert records[2].national_id.startswith("8") and records[2].last_name == "DURAND"  # http://rpps.fr id
    # 7 roles in pages of 2 → 4 search pages, plus one direct read of Organization/o2 (cached afterwards).
    searches = [r for r in server.requests if "/PractitionerRole" in r[1]]
    assert len(searches) == 4 and requests == 5
    assert all(r[2]["esante-api-key"] == API_KEY for r in server.requests)
    assert "PractitionerRole:practitioner" in parse_qs(urlparse(searches[0][1]).query)["_include"]


def test_last_updated_filter(local_server, specialties):
    server = local_server(sample_state().handler())
    items, _ = _run(server, specialties, since=datetime(2025, 1, 11, tzinfo=timezone.utc))
    records = [i for i in items if isinstance(i, PracticeRecord)]
    assert {r.updated for r in records} == {"2025-01-12T08:00:00Z", "2025-01-11T08:00:00Z", "2025-01-13T08:00:00Z"}
    assert parse_qs(urlparse(server.requests[0][1]).query)["_lastUpdated"] == ["ge2025-01-11T00:00:00Z"]


def test_wrong_key_and_outage_are_clear_errors(local_server, specialties):
    server = local_server(sample_state().handler())
    with AnnuaireFhirClient(server.url + "/fhir", api_key="wrong", attempts=2) as client:
        with pytest.raises(ConfigurationError, match="API key"):
            list(client.practice_records(specialties=specialties))
    down = local_server(lambda m, p, h: (503, "text/plain", b"maintenance"))
    with AnnuaireFhirClient(down.url + "/fhir", api_key=API_KEY, attempts=2) as client:
        with pytest.raises(BackendUnavailable, match="after 2 attempts"):
            list(client.practice_records(specialties=specialties))
    assert len(down.requests) == 2   # retried once
