"""ARCHITECTURE.md stays true: its table names every folder of the tree (and no other), the files it names
exist, and the rules it lists are exactly the import contracts ``make test`` checks."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
DOC = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    start = DOC.index(f"## {title}\n")
    end = DOC.find("\n## ", start + 1)
    return DOC[start:end if end != -1 else None]


def _table_rows() -> dict[str, str]:
    rows = {}
    for line in _section("Who owns what").splitlines():
        match = re.match(r"^\| `([^`]+)/` \| (.+) \| (.+) \|$", line)
        if match:
            rows[match.group(1)] = match.group(2)
    return rows


def _tracked_top_folders() -> set[str]:
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    return {f.split("/", 1)[0] for f in files if "/" in f and not f.startswith(".")}


def test_the_table_names_every_folder_of_the_tree_and_no_other():
    assert set(_table_rows()) == _tracked_top_folders()


def test_every_file_the_table_names_exists():
    missing = []
    for folder, owns in _table_rows().items():
        for token in re.findall(r"`([\w./-]+(?:\.py|/))`", owns):
            candidates = [ROOT / folder / token, ROOT / token]
            if not any(c.exists() for c in candidates) and not list((ROOT / folder).rglob(token.rstrip("/"))):
                missing.append(f"{folder}: {token}")
    assert missing == []


def _contract_names() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return [c["name"] for c in config["tool"]["importlinter"]["contracts"]]


def test_the_rules_listed_are_the_contracts_ci_checks():
    listed = re.findall(r"^- \*\*(.+?)\*\*", _section("Rules CI checks"), flags=re.MULTILINE)
    assert listed == _contract_names()


def test_make_test_runs_the_checks():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    test_target = re.search(r"^test:(.*)$", makefile, flags=re.MULTILINE)
    assert test_target and "lint" in test_target.group(1).split()
    lint_recipe = re.search(r"^lint:.*\n((?:\t.*\n)+)", makefile, flags=re.MULTILINE)
    assert lint_recipe
    for command in ("lint-imports", "ruff check", "mypy"):
        assert command in lint_recipe.group(1)


#: Folders the docs name that a run writes (absent from a fresh clone until the browser tests ran).
_WRITTEN_BY_RUNS = {"tests/e2e/artifacts/"}


def test_every_path_the_docs_name_exists():
    """README.md and ARCHITECTURE.md name files and folders of the tree: a move must update them."""
    pattern = r"`((?:tests|search_api|indexer|connectors|sas_core|sas_cli|simulator|bench|mappings|scripts)/[\w./<>-]+)"
    missing = []
    for doc in ("README.md", "ARCHITECTURE.md"):
        for token in set(re.findall(pattern, (ROOT / doc).read_text(encoding="utf-8"))):
            if "<" in token:   # a name pattern (``search-<time>.json``), not a path
                continue
            if token in _WRITTEN_BY_RUNS:
                continue
            path = token.split("::")[0].rstrip(".")
            # ``connectors/lrm.HubListener``: a module and one of its names.
            module = re.sub(r"\.[A-Za-z_]\w*$", ".py", path)
            if not (ROOT / path).exists() and not (ROOT / module).exists():
                missing.append(f"{doc}: {token}")
    assert missing == []
