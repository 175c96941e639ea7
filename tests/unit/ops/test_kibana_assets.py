"""Kibana cannot run here: the saved objects of ``mappings/kibana/*.ndjson`` are checked statically.

Every data view names an existing alias (``__SAS_PREFIX__-<index>``, rewritten by ``sas kibana import``)
and a date time field; every visualisation references an existing data view and aggregates existing,
aggregatable fields of the right type; every dashboard panel references an existing visualisation.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from mappings.registry import INDICES, spec
from sas_cli.kibana import PREFIX_PLACEHOLDER, asset_files, render_assets

ALIAS_RE = re.compile(rf"^{PREFIX_PLACEHOLDER}-([a-z_]+)$")
#: Aggregations and the field types they accept.
NUMERIC = {"integer", "long", "short", "byte", "float", "double", "scaled_float", "half_float"}
AGG_TYPES = {
    "terms": {"keyword", "boolean", *NUMERIC},
    "cardinality": {"keyword", "boolean", "date", *NUMERIC},
    "date_histogram": {"date"},
    "avg": NUMERIC, "sum": NUMERIC, "min": NUMERIC | {"date"}, "max": NUMERIC | {"date"},
}
#: The dashboards the issue asks for (by id suffix).
DASHBOARDS = {"orientations", "practitioners", "slots", "declarations", "harvest"}


def fields_of(index: str) -> dict[str, dict]:
    """``dotted path → mapping`` of every leaf field of an index, with its nesting."""
    found: dict[str, dict] = {}

    def walk(properties: dict, path: str, nested: bool) -> None:
        for name, mapping in properties.items():
            full = f"{path}{name}"
            is_nested = nested or mapping.get("type") == "nested"
            if "properties" in mapping:
                walk(mapping["properties"], f"{full}.", is_nested)
            else:
                found[full] = {**mapping, "_nested": is_nested}

    walk(spec(index).definition["mappings"]["properties"], "", False)
    return found


@pytest.fixture(scope="module")
def objects() -> list[dict]:
    lines = []
    for path in asset_files():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                try:
                    lines.append(json.loads(line))
                except json.JSONDecodeError as exc:  # pragma: no cover - the assertion message is the point
                    pytest.fail(f"{path.name}:{number} is not JSON: {exc}")
    return lines


def by_type(objects: list[dict], kind: str) -> dict[str, dict]:
    return {o["id"]: o for o in objects if o["type"] == kind}


def test_assets_exist_and_ids_are_unique(objects):
    assert asset_files(), "no mappings/kibana/*.ndjson"
    ids = [(o["type"], o["id"]) for o in objects]
    assert len(ids) == len(set(ids))
    for obj in objects:
        assert obj["type"] in {"index-pattern", "visualization", "dashboard", "lens"}, obj["type"]
        assert obj["id"].startswith(f"{PREFIX_PLACEHOLDER}-"), f"{obj['id']}: ids carry the prefix placeholder"
        assert obj["attributes"]["title"] if obj["type"] != "index-pattern" else True


def test_data_views_name_existing_aliases_and_date_time_fields(objects):
    views = by_type(objects, "index-pattern")
    covered = set()
    for view in views.values():
        title = view["attributes"]["title"]
        match = ALIAS_RE.match(title)
        assert match, f"data view title {title!r} is not {PREFIX_PLACEHOLDER}-<index>"
        index = match.group(1)
        assert index in {s.name for s in INDICES}, f"{title}: no index {index!r}"
        covered.add(index)
        time_field = view["attributes"].get("timeFieldName")
        if time_field is not None:
            field = fields_of(index).get(time_field)
            assert field is not None, f"{title}: time field {time_field} not in the mapping"
            assert field["type"] == "date", f"{title}: time field {time_field} is a {field['type']}"
    # Event indices have a time field; the directory (offers) is a state, filtered by time nowhere.
    assert {"orientations", "slots", "declarations", "harvest_runs", "offers"} <= covered
    timed = {ALIAS_RE.match(v["attributes"]["title"]).group(1) for v in views.values()
             if v["attributes"].get("timeFieldName")}
    assert {"orientations", "slots", "declarations", "harvest_runs"} <= timed


def _visualisation_fields(vis: dict) -> list[tuple[str, str]]:
    """``(aggregation type, field)`` of a legacy visualisation's aggregations."""
    state = json.loads(vis["attributes"]["visState"])
    return [(agg["type"], agg["params"]["field"]) for agg in state["aggs"] if "field" in agg.get("params", {})]


def _data_view_of(obj: dict, views: dict[str, dict]) -> dict:
    refs = [r for r in obj["references"] if r["type"] == "index-pattern"]
    assert refs, f"{obj['id']} references no data view"
    for ref in refs:
        assert ref["id"] in views, f"{obj['id']} references unknown data view {ref['id']}"
    return views[refs[0]["id"]]


def test_visualisations_reference_existing_views_and_fields(objects):
    views = by_type(objects, "index-pattern")
    visualisations = by_type(objects, "visualization") | by_type(objects, "lens")
    assert len(visualisations) >= len(DASHBOARDS)
    for vis in visualisations.values():
        view = _data_view_of(vis, views)
        index = ALIAS_RE.match(view["attributes"]["title"]).group(1)
        mapping = fields_of(index)
        if vis["type"] == "lens":  # pragma: no cover - none yet; the reference check above still applies
            continue
        search = json.loads(vis["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])
        assert search["indexRefName"] in {r["name"] for r in vis["references"]}
        used = _visualisation_fields(vis)
        assert used, f"{vis['id']} aggregates no field"
        for agg_type, field_name in used:
            field = mapping.get(field_name)
            assert field is not None, f"{vis['id']}: {field_name} is not a field of {index}"
            assert not field["_nested"], f"{vis['id']}: {field_name} is nested (legacy aggregations cannot use it)"
            assert field.get("doc_values", True) is not False, f"{vis['id']}: {field_name} is not aggregatable"
            assert field["type"] in AGG_TYPES[agg_type], f"{vis['id']}: {agg_type} on {field_name} ({field['type']})"
        # Field names in the KQL query exist too.
        for name in re.findall(r"([a-z_.]+)\s*:", search["query"]["query"]):
            assert name in mapping, f"{vis['id']}: query field {name} is not in {index}"


def test_dashboards_cover_the_issue_and_reference_existing_panels(objects):
    visualisations = by_type(objects, "visualization") | by_type(objects, "lens")
    dashboards = by_type(objects, "dashboard")
    assert {d.removeprefix(f"{PREFIX_PLACEHOLDER}-dash-") for d in dashboards} >= DASHBOARDS
    for dashboard in dashboards.values():
        panels = json.loads(dashboard["attributes"]["panelsJSON"])
        references = {r["name"]: r for r in dashboard["references"]}
        assert panels
        for panel in panels:
            ref = references[panel["panelRefName"]]
            assert ref["type"] in {"visualization", "lens"}
            assert ref["id"] in visualisations, f"{dashboard['id']}: unknown panel {ref['id']}"


def test_rendering_replaces_the_prefix_everywhere(tmp_path: Path):
    rendered = render_assets(prefix="sasprod").decode("utf-8")
    assert PREFIX_PLACEHOLDER not in rendered
    views = [json.loads(line) for line in rendered.splitlines() if '"index-pattern"' in line[:30]]
    assert {v["attributes"]["title"] for v in views} >= {"sasprod-slots", "sasprod-orientations"}
    # Every line is still one JSON object (the NDJSON format of the import API).
    assert all(json.loads(line) for line in rendered.splitlines())
