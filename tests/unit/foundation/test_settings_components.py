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
    LocalClusterSettings,
    LocalNodeSettings,
    Settings,
    WebSettings,
    WorkflowSettings,
)

COMPONENTS = [ElasticsearchSettings, LocalNodeSettings, LocalClusterSettings, KibanaSettings, AuthSettings, ApiSettings,
              WebSettings, DirectorySettings, HarvestSettings, WorkflowSettings, FhirListenerSettings]


def test_the_union_is_exactly_the_components_fields():
    union = set(Settings.model_fields)
    by_components = set().union(*(c.model_fields for c in COMPONENTS))
    assert union == by_components
    # Variables a deployment sets keep their names (a few of each component, spelled as operators write them).
    for name in ("es_url", "index_prefix", "es_heap", "auth_mode", "rate_limit", "api_port", "web_session_idle_s",
                 "directory_reject_threshold", "addresses_bulk_chunk", "vendors_file", "harvest_worker_processes",
                 "lrm_hub_host", "report_max_hours", "fhir_client_subjects", "kibana_url", "es_urls",
                 "es_cluster_http_port"):
        assert name in union


def test_every_field_is_declared_by_one_component_or_one_shared_part():
    shared = {"StorageSettings", "IndicesSettings", "LoggingSettings", "GeocoderSettings", "VendorsFileSettings"}
    declared: dict[str, list[str]] = {}
    for cls in Settings.__mro__:
        for name in getattr(cls, "__annotations__", {}):
            if name in Settings.model_fields:
                declared.setdefault(name, []).append(cls.__name__)
    assert set(declared) == set(Settings.model_fields)
    assert {name: owners for name, owners in declared.items() if len(owners) != 1} == {}
    owners = {owners[0] for owners in declared.values()}
    assert owners <= {c.__name__ for c in COMPONENTS} | shared


def test_the_harvest_and_the_directory_load_see_no_api_web_or_workflow_tunable():
    for component in (HarvestSettings, DirectorySettings):
        fields = set(component.model_fields)
        for other in (ApiSettings, WebSettings, WorkflowSettings, AuthSettings, FhirListenerSettings):
            own = set(other.model_fields) - {"index_prefix", "es_request_timeout_s", "vendors_file", "cache_dir",
                                              "reference_data_dir", "log_level", "log_json"}
            assert not fields & own, (component.__name__, other.__name__, fields & own)


def test_slice_keeps_values_and_hides_the_rest(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SAS_HARVEST_BULK_CHUNK", "1234")
    monkeypatch.setenv("SAS_INDEX_PREFIX", "slicecheck")
    whole = Settings()
    harvest = whole.slice(HarvestSettings)
    assert type(harvest) is HarvestSettings
    assert harvest.harvest_bulk_chunk == 1234
    assert harvest.cache_dir == whole.cache_dir and harvest.index_prefix == "slicecheck"
    with pytest.raises(AttributeError):
        harvest.api_port  # noqa: B018 - the attribute access is the assertion
    with pytest.raises(AttributeError):
        harvest.es_url  # noqa: B018 - the attribute access is the assertion
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
