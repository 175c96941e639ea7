from __future__ import annotations

import pytest
from pydantic import ValidationError

from sas_core.settings import Settings
from sas_core.territories import departement_from_insee, is_territory, territory_for_departement
from sas_core.text import fold


def test_defaults(monkeypatch):
    for key in ("SAS_ES_URL", "SAS_INDEX_PREFIX", "SAS_AUTH_MODE"):
        monkeypatch.delenv(key, raising=False)
    settings = Settings()
    assert settings.es_url == "http://127.0.0.1:9200"
    assert settings.index_prefix == "sas"
    assert settings.auth_mode == "dev"
    assert settings.es_port == 9200 and settings.es_is_loopback


def test_environment_prefix(monkeypatch):
    monkeypatch.setenv("SAS_INDEX_PREFIX", "x")
    monkeypatch.setenv("SAS_ES_URL", "https://es.example:9243")
    settings = Settings()
    assert settings.index_prefix == "x"
    assert settings.es_port == 9243 and not settings.es_is_loopback


@pytest.mark.parametrize("bad", ["", "UPPER", "has space", "-lead", "a*b"])
def test_bad_prefix_is_refused(bad):
    with pytest.raises(ValidationError):
        Settings(index_prefix=bad)


def test_contextual_origins_are_known_samu_ids(monkeypatch):
    monkeypatch.setenv("SAS_CONTEXTUAL_ORIGINS", '["FR.HEALTH.SAMU330", "fr.health.samu2a0"]')
    assert Settings().contextual_origins == ["fr.health.samu330", "fr.health.samu2A0"]
    for bad in (["fr.health.samu990"], ["330"], ["fr.health.samu200"]):
        with pytest.raises(ValidationError):
            Settings(contextual_origins=bad)


def test_reference_data_is_the_projects_own_copy(tmp_path, monkeypatch):
    """A bare clone runs with nothing beside it: the default reference tables are the project's copy, even
    when a ``../shared/data`` (here a decoy with a broken table) sits beside the working directory."""
    from connectors.reference import load_communes
    from sas_core.settings import PROJECT_ROOT

    decoy = tmp_path / "shared" / "data"
    decoy.mkdir(parents=True)
    (decoy / "communes_fr.csv").write_text("not;the;table\n", encoding="utf-8")
    work = tmp_path / "main"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv("SAS_REFERENCE_DATA_DIR", raising=False)
    settings = Settings()
    assert settings.reference_data_dir == PROJECT_ROOT / "connectors" / "reference_data"
    communes = load_communes(settings.reference_data_dir)
    assert len(communes) > 34_000
    rennes = next(c for c in communes if c.insee == "35238")
    assert set(rennes.postcodes) == {"35000", "35200", "35700"}        # every postal code of the commune
    assert (settings.reference_data_dir / "specialites_tre_r38.csv").is_file()
    assert (settings.reference_data_dir / "SOURCE.md").read_text(encoding="utf-8").count("Licence Ouverte") == 1


@pytest.mark.parametrize(
    ("raw", "folded"),
    [("Saint-Étienne", "saint etienne"), ("ÎLE-DE-FRANCE", "ile de france"), ("Cœur  d'Alène", "coeur d alene"),
     (None, ""), ("", "")],
)
def test_fold(raw, folded):
    assert fold(raw) == folded


def test_territories():
    assert territory_for_departement("47") == "SAS-47"
    assert territory_for_departement("2a") == "SAS-2A"
    assert departement_from_insee("97411") == "974"
    assert departement_from_insee("47001") == "47"
    assert is_territory("SAS-92") and is_territory("SAS-971") and not is_territory("SAS-9") and not is_territory("92")
