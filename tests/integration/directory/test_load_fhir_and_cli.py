"""Loading from the Annuaire Santé FHIR API (local server) and the `sas directory` commands."""

from __future__ import annotations

import json

from pydantic import SecretStr
from typer.testing import CliRunner

from indexer.directory import load_directory_fhir, refresh_directory
from tests.unit.directory.conftest import LocalServer
from tests.unit.directory.fhir_server import API_KEY, sample_state


def test_fhir_incremental_load(es, dir_settings, dir_indices, geocoder):
    state = sample_state()
    with LocalServer(state.handler()) as server:
        settings = dir_settings.model_copy(update={"annuaire_fhir_url": server.url + "/fhir",
                                                   "annuaire_fhir_api_key": SecretStr(API_KEY),
                                                   "annuaire_fhir_page_size": 3})
        summary = load_directory_fhir(settings=settings, es=es, geocoder=geocoder, threshold=0.5)
        assert summary.to_dict()["rejected_by_reason"] == {"invalid_rpps_key": 1, "unknown_profession": 1}
        assert summary.places == 4 and summary.created == 4 and summary.mode == "incremental"
        es.indices.refresh(index=f"{dir_settings.index_prefix}-offers")
        doc = es.get(index=f"{dir_settings.index_prefix}-offers", id="ps-810001234565-o2")["_source"]
        assert doc["source"] == "annuaire_fhir" and doc["address"]["insee"] == "75115"
        assert doc["source_updated_at"] == "2025-01-12T08:00:00Z" and doc["specialties"] == ["SM59"]
        # The scheduled refresh asks only for what changed since the last successful run.
        again = refresh_directory(es=es, settings=settings)
        since = [r for r in server.requests if "_lastUpdated" in r[1]]
        assert since and again.indexed == 0
        assert refresh_directory(es=es, settings=dir_settings.model_copy(update={"annuaire_fhir_url": None})) is None


def test_cli_generate_then_load(es, dir_settings, dir_indices, tmp_path, monkeypatch):
    from sas_cli.main import app

    monkeypatch.setenv("SAS_INDEX_PREFIX", dir_settings.index_prefix)
    runner = CliRunner()
    result = runner.invoke(app, ["directory", "generate", "--out", str(tmp_path), "--places", "300",
                                 "-d", "47", "--seed", "5", "--date", "2025-01-15"])
    assert result.exit_code == 0, result.output
    files = json.loads(result.output)
    assert files["places"] == 300
    result = runner.invoke(app, ["directory", "load", "--rpps", files["rpps"], "--finess", files["finess"],
                                 "--participation", files["participation"], "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["status"] == "success" and summary["kinds"]["ps"] == 300 and summary["rejected"] == 0
    assert set(summary["geo_precision"]) <= {"municipality", "postcode", "address"}
    # A missing file is a clear error, not a traceback.
    result = runner.invoke(app, ["directory", "load", "--rpps", str(tmp_path / "nope.txt")])
    assert result.exit_code == 1 and "not found" in result.output
