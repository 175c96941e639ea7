"""Each pydantic document model and its strict JSON mapping describe the same fields."""

from __future__ import annotations

import json
import types
import typing

import pytest
from pydantic import BaseModel

from mappings import lockfile
from mappings.registry import INDICES


def _submodel(annotation) -> type[BaseModel] | None:
    """The pydantic model inside ``X``, ``X | None`` or ``list[X]``, if any."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, list, tuple, set, frozenset):
        for arg in typing.get_args(annotation):
            found = _submodel(arg)
            if found is not None:
                return found
        return None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def model_tree(model: type[BaseModel]) -> dict:
    tree: dict = {}
    for name, field in model.model_fields.items():
        sub = _submodel(field.annotation)
        # A date_range / geo_point is a model in Python but a leaf in the mapping.
        tree[name] = None if sub is None or sub.__name__ in {"GeoPoint", "DateRange"} else model_tree(sub)
    return tree


def mapping_tree(properties: dict) -> dict:
    tree: dict = {}
    for name, definition in properties.items():
        if "properties" in definition and definition.get("type", "object") in {"object", "nested"}:
            tree[name] = mapping_tree(definition["properties"])
        else:
            tree[name] = None
    return tree


@pytest.mark.parametrize("spec", INDICES, ids=lambda s: s.name)
def test_model_and_mapping_have_the_same_fields(spec):
    assert model_tree(spec.model) == mapping_tree(spec.body["mappings"]["properties"])


@pytest.mark.parametrize("spec", INDICES, ids=lambda s: s.name)
def test_mapping_is_strict_and_versioned(spec):
    definition = spec.definition
    assert definition["mappings"]["dynamic"] == "strict"
    assert isinstance(definition["version"], int) and definition["version"] >= 1


def test_mapping_changes_bump_the_version():
    """Edited a mapping? Bump its ``version`` and run ``python -m mappings.lockfile``."""
    locked = json.loads(lockfile.LOCK_PATH.read_text())
    for name, now in lockfile.current().items():
        assert name in locked, f"{name} missing from versions.lock.json: run python -m mappings.lockfile"
        if now["fingerprint"] != locked[name]["fingerprint"]:
            assert now["version"] > locked[name]["version"], (
                f"mapping of {name!r} changed without a version bump; bump 'version' in mappings/{name}.json, "
                "then run python -m mappings.lockfile"
            )


def test_index_and_alias_names_carry_the_prefix():
    for spec in INDICES:
        assert spec.alias("abc") == f"abc-{spec.name}"
        assert spec.index("abc") == f"abc-{spec.name}-v{spec.version}"
