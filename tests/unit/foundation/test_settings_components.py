"""Settings per component: every ``SAS_*`` variable belongs to a component, keeps its name, and a slice
holds its component's fields only."""

from __future__ import annotations

import pytest

from sas_core import settings as settings_module
from sas_core.settings import (
    ApiSettings,
    AuthSettings,
    DirectorySettings,
    ElasticsearchSettings,
    FhirListenerSettings,
    HarvestSettings,
    KibanaSettings,
    LocalNodeSettings,
    Settings,
    WebSettings,
    WorkflowSettings,
)

COMPONENTS = [ElasticsearchSettings, LocalNodeSettings, KibanaSettings, AuthSettings, ApiSettings, WebSettings,
              DirectorySettings, HarvestSettings, WorkflowSettings, FhirListenerSettings]


def test_the_union_is_exactly_the_components_fields():
    union = set(Settings.model_fields)
    by_components = set().union(*(c.model_fields for c in COMPONENTS))
    assert union == by_components
    # Variables a deployment sets keep their names (a few of each component, spelled as operators write them).
    for name in ("es_url", "index_prefix", "es_heap", "auth_mode", "rate_limit", "api_port", "web_session_idle_s",
                 "directory_reject_threshold", "addresses_bulk_chunk", "vendors_file", "harvest_worker_processes",
                 "lrm_hub_host", "report_max_hours", "fhir_client_subjects", "kibana_url"):
        assert name in union


def test_a_field_is_owned_by_one_component_unless_shared_on_purpose():
    shared = {"cache_dir", "reference_data_dir", "vendors_file"}  # StorageSettings / VendorsFileSettings mixins
    owners: dict[str, list[str]] = {}
    for component in COMPONENTS:
        inherited = set().union(*(b.model_fields for b in component.__mro__[1:]
                                  if isinstance(b, type) and b in COMPONENTS))
        for name in set(component.model_fields) - inherited:
            owners.setdefault(name, []).append(component.__name__)
    doubled = {name: who for name, who in owners.items() if len(who) > 1 and name not in shared}
    assert doubled == {}


def test_slice_keeps_values_and_hides_the_rest(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SAS_HARVEST_BULK_CHUNK", "1234")
    monkeypatch.setenv("SAS_INDEX_PREFIX", "slicecheck")
    whole = Settings()
    harvest = whole.slice(HarvestSettings)
    assert type(harvest) is HarvestSettings
    assert harvest.harvest_bulk_chunk == 1234
    assert harvest.cache_dir == whole.cache_dir
    with pytest.raises(AttributeError):
        harvest.index_prefix  # noqa: B018 - the attribute access is the assertion
    es = whole.slice(ElasticsearchSettings)
    assert es.index_prefix == "slicecheck" and es.es_port == 9200


def test_components_validate_like_the_whole():
    with pytest.raises(ValueError, match="SAS_INDEX_PREFIX"):
        ElasticsearchSettings(index_prefix="Not Valid")
    with pytest.raises(ValueError, match="SAS_CONTEXTUAL_ORIGINS"):
        WorkflowSettings(contextual_origins=["fr.health.samu999"])


def test_nothing_is_read_at_import():
    # The module defines classes only: no Settings instance lives at module level.
    assert not [v for v in vars(settings_module).values() if isinstance(v, settings_module.BaseSettings)]


def test_the_vendors_file_keeps_its_former_variable_name(monkeypatch: pytest.MonkeyPatch, tmp_path):
    monkeypatch.delenv("SAS_VENDORS_FILE", raising=False)
    monkeypatch.setenv("SAS_EDITORS_FILE", str(tmp_path / "old.yaml"))
    assert Settings().vendors_file == tmp_path / "old.yaml"
    assert Settings().slice(HarvestSettings).vendors_file == tmp_path / "old.yaml"
    monkeypatch.setenv("SAS_VENDORS_FILE", str(tmp_path / "new.yaml"))
    assert Settings().vendors_file == tmp_path / "new.yaml"
    assert Settings(vendors_file=tmp_path / "given.yaml").vendors_file == tmp_path / "given.yaml"
