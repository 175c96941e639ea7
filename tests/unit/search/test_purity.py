"""The query builders are pure: no Elasticsearch client, no HTTP, no clock, no file; only the executor
talks to Elasticsearch."""

from __future__ import annotations

import ast
from pathlib import Path

import search_api

SEARCH_API = Path(search_api.__file__).parent
QUERY_MODULES = sorted((SEARCH_API / "query").glob("*.py"))
FORBIDDEN_IMPORTS = {"elasticsearch", "elastic_transport", "httpx", "requests", "urllib3", "os", "pathlib", "time"}
FORBIDDEN_CALLS = {"now", "utcnow", "today", "time", "monotonic", "open", "read_text"}


def _imports(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_query_builders_import_no_client_and_read_no_clock():
    assert QUERY_MODULES, "search_api/query/ has no module"
    for path in QUERY_MODULES:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        assert not _imports(tree) & FORBIDDEN_IMPORTS, path.name
        calls = {node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                 for node in ast.walk(tree) if isinstance(node, ast.Call)}
        assert not calls & FORBIDDEN_CALLS, (path.name, calls & FORBIDDEN_CALLS)


def test_search_modules_leave_elasticsearch_to_the_executor():
    mine = [*QUERY_MODULES, *(SEARCH_API / "schemas").glob("*.py"), SEARCH_API / "routes" / "search.py",
            SEARCH_API / "routes" / "cpts.py", SEARCH_API / "search_service.py", SEARCH_API / "visibility.py",
            SEARCH_API / "geocode.py", SEARCH_API / "specialties.py"]
    for path in mine:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        assert not _imports(tree) & {"elasticsearch", "elastic_transport"}, path
