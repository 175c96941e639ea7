"""Who may import whom inside ``search_api``: routes and pages call services; request parameters are resolved
in ``params``; only the executor (and the app factories creating the client) touch Elasticsearch."""

from __future__ import annotations

import ast
from pathlib import Path

import search_api

SEARCH_API = Path(search_api.__file__).parent
#: The one caller of the client, and the app factory that hands it a client made by ``sas_core.es``.
ELASTICSEARCH_ALLOWED = {"executor.py", "app.py"}


def _modules(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _python_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py"))


def test_only_the_executor_imports_elasticsearch():
    for path in _python_files(SEARCH_API):
        if path.relative_to(SEARCH_API).as_posix() in ELASTICSEARCH_ALLOWED:
            continue
        imported = {m.split(".")[0] for m in _modules(ast.parse(path.read_text(encoding="utf-8")))}
        assert not imported & {"elasticsearch", "elastic_transport"}, path


def test_pages_middleware_and_routes_do_not_borrow_from_routes():
    borrowers = [*_python_files(SEARCH_API / "web"), SEARCH_API / "middleware.py",
                 *_python_files(SEARCH_API / "routes")]
    for path in borrowers:
        imported = _modules(ast.parse(path.read_text(encoding="utf-8")))
        assert not any(m == "search_api.routes" or m.startswith("search_api.routes.") for m in imported), path


def test_no_service_is_built_on_first_use():
    # A lock-guarded lazy getter on ``app.state`` was how services used to appear; they are built at start-up.
    for path in _python_files(SEARCH_API):
        text = path.read_text(encoding="utf-8")
        assert "request.app.state.search_context" not in text and "request.app.state.suggestion_index" not in text
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    # Requests only read the services: they never put one on the app.
                    assert not ast.unparse(target).startswith("request.app.state."), (path, ast.unparse(target))
        assert "gc.freeze" not in text or path.name == "services.py", path


def test_pages_import_at_the_top():
    for path in _python_files(SEARCH_API / "web" / "pages"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                inner = [n for n in ast.walk(node) if isinstance(n, (ast.Import, ast.ImportFrom))]
                assert not inner, (path.name, node.name)
