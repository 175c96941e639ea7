"""The platform's indices: one strict JSON mapping per index, next to its pydantic document model.

Each ``mappings/<name>.json`` holds ``{"version": N, "settings": {...}, "mappings": {...}}``. The
concrete index is ``<prefix>-<name>-v<N>``, always reached through the alias ``<prefix>-<name>``.
Changing a mapping means bumping ``version`` (``tests/unit/foundation/test_mappings.py`` enforces it through
``mappings/versions.lock.json``); ``sas migrate`` then builds the new index and swaps the alias.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

from pydantic import BaseModel

from mappings.accounts import AccountDoc
from mappings.addresses import AddressDoc
from mappings.api_keys import ApiKeyDoc
from mappings.audit import AuditDoc
from mappings.declarations import DeclarationDoc
from mappings.harvest_runs import HarvestRunDoc
from mappings.locks import LockDoc
from mappings.offers import OfferDoc
from mappings.orientations import OrientationDoc
from mappings.slots import SlotDoc
from mappings.web_sessions import WebSessionDoc


@dataclass(frozen=True)
class IndexSpec:
    """One logical index: its short name, its document model and its JSON definition."""

    name: str
    model: type[BaseModel]

    @property
    def definition(self) -> dict:
        return _load_definition(self.name)

    @property
    def version(self) -> int:
        return int(self.definition["version"])

    @property
    def body(self) -> dict:
        """``settings`` + ``mappings`` as sent to the create-index API."""
        definition = self.definition
        return {"settings": definition.get("settings", {}), "mappings": definition["mappings"]}

    def fingerprint(self) -> str:
        """Hash of the index body: a change without a version bump is caught by a unit test."""
        canonical = json.dumps(self.body, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def alias(self, prefix: str) -> str:
        return f"{prefix}-{self.name}"

    def index(self, prefix: str, version: int | None = None) -> str:
        return f"{prefix}-{self.name}-v{self.version if version is None else version}"


@cache
def _load_definition(name: str) -> dict:
    return json.loads(resources.files("mappings").joinpath(f"{name}.json").read_text(encoding="utf-8"))


INDICES: tuple[IndexSpec, ...] = (
    IndexSpec("offers", OfferDoc),
    IndexSpec("slots", SlotDoc),
    IndexSpec("orientations", OrientationDoc),
    IndexSpec("declarations", DeclarationDoc),
    IndexSpec("accounts", AccountDoc),
    IndexSpec("harvest_runs", HarvestRunDoc),
    IndexSpec("locks", LockDoc),
    IndexSpec("api_keys", ApiKeyDoc),
    IndexSpec("audit", AuditDoc),
    IndexSpec("web_sessions", WebSessionDoc),
    IndexSpec("addresses", AddressDoc),  # the national address base (BAN), where practice places are placed
)


def spec(name: str) -> IndexSpec:
    """The spec of index ``name`` (``KeyError`` when unknown)."""
    for candidate in INDICES:
        if candidate.name == name:
            return candidate
    raise KeyError(name)


def alias_name(prefix: str, name: str) -> str:
    """``<prefix>-<name>``: what every reader and writer uses."""
    return spec(name).alias(prefix)
