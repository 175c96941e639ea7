"""A real Elasticsearch client that refuses to write outside the test session's index prefix.

It is the real client (every request reaches the real node); it only inspects the target of write
requests first, so a test can never damage another stack's indices on a shared cluster.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from elasticsearch import Elasticsearch

_READ_METHODS = {"GET", "HEAD"}
# Body-carrying read endpoints that use POST.
_READ_POST_SUFFIXES = ("/_search", "/_count", "/_msearch", "/_mget", "/_field_caps", "/_validate/query",
                       "/_pit", "/_search/scroll", "/_refresh", "/_explain")
_SYSTEM_READ_PATHS = {"/_search/scroll", "/_pit", "/_msearch", "/_mget", "/_search", "/_count",
                      "/_refresh", "/_cluster/health"}


class ForeignIndexWrite(AssertionError):
    """A test tried to write an index outside its prefix."""


class GuardedElasticsearch(Elasticsearch):
    """``Elasticsearch`` whose write requests must only name ``<prefix>-*`` indices."""

    def __init__(self, *args: Any, allowed_prefix: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._allowed_prefix = allowed_prefix

    def options(self, **kwargs: Any) -> GuardedElasticsearch:  # keep the guard on derived clients
        client = super().options(**kwargs)
        client._allowed_prefix = self._allowed_prefix
        return client

    def _check(self, names: Iterable[str], what: str) -> None:
        if not self._allowed_prefix:
            raise ForeignIndexWrite("guarded client used without a prefix")
        for name in names:
            name = name.strip()
            if not name:
                continue
            if not name.startswith(f"{self._allowed_prefix}-"):
                raise ForeignIndexWrite(f"{what} targets {name!r}, outside test prefix {self._allowed_prefix!r}")

    def perform_request(self, method: str, path: str, *, params=None, headers=None, body=None, **kwargs):
        if method not in _READ_METHODS:
            self._inspect(method, path, body)
        return super().perform_request(method, path, params=params, headers=headers, body=body, **kwargs)

    def _inspect(self, method: str, path: str, body: Any) -> None:
        bare = path.split("?", 1)[0]
        if bare in _SYSTEM_READ_PATHS or bare.startswith("/_cluster/health") or bare.startswith("/_search/scroll"):
            return
        if bare.endswith(_READ_POST_SUFFIXES) and method == "POST":
            return
        if bare == "/_pit" and method == "DELETE":
            return
        segment = bare.lstrip("/").split("/", 1)[0]
        if segment == "_bulk":
            self._check(_bulk_targets(body), "bulk")
            return
        if segment == "_aliases":
            actions = (body or {}).get("actions", []) if isinstance(body, dict) else []
            for action in actions:
                for spec in action.values():
                    self._check(_as_list(spec.get("index")) + _as_list(spec.get("indices")), "alias action")
                    self._check(_as_list(spec.get("alias")) + _as_list(spec.get("aliases")), "alias action")
            return
        if segment.startswith("_"):
            if segment in {"_snapshot", "_cluster", "_nodes", "_tasks"}:
                return  # cluster-level operations: allowed, they are not index writes
            raise ForeignIndexWrite(f"unexpected write endpoint {method} {path} in tests")
        self._check(re.split(r",", segment), f"{method} {bare}")


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _bulk_targets(body: Any) -> list[str]:
    if body is None:
        return []
    if isinstance(body, (bytes, str)):
        lines = body.decode() if isinstance(body, bytes) else body
        items = [json.loads(line) for line in lines.splitlines() if line.strip()]
    else:
        items = [json.loads(i) if isinstance(i, (bytes, str)) else i for i in body]
    targets: list[str] = []
    for item in items:
        if isinstance(item, dict) and len(item) == 1:
            (op, meta), = item.items()
            if op in {"index", "create", "update", "delete"} and isinstance(meta, dict):
                targets.append(meta.get("_index", ""))
    return [t for t in targets if t]
