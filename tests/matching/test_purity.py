"""The layering the architecture fixes, read from the source: ``matching`` is pure (it
imports nothing of the project but itself, no database, crawler or file-system module,
and calls no ``open``), and no lower layer imports ``adwatch``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOWER_LAYERS = ("crawler", "storage", "legal_policy", "matching")
# Nothing of the project but matching itself; no database, crawler, network or file-system
# module (decoding bytes with io.BytesIO is not reading a file).
NOT_IN_MATCHING = {
    "adwatch", "crawler", "storage", "legal_policy", "sqlalchemy", "alembic", "psycopg",
    "scrapy", "scrapy_playwright", "playwright", "twisted", "redis", "warcio", "requests",
    "os", "pathlib", "importlib", "shutil", "glob", "tempfile", "sqlite3", "socket",
}  # fmt: skip


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _imported(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", _modules("matching"), ids=lambda p: p.name)
def test_matching_imports_nothing_of_the_project_and_opens_no_file(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    assert not _imported(tree) & NOT_IN_MATCHING
    opens = [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "open"
    ]
    assert not opens, f"{path.name} calls open() on lines {opens}"


@pytest.mark.parametrize("path", [p for layer in LOWER_LAYERS for p in _modules(layer)], ids=str)
def test_no_lower_layer_imports_the_front_door(path: Path) -> None:
    assert "adwatch" not in _imported(ast.parse(path.read_text(encoding="utf-8")))


def test_the_checks_see_the_modules() -> None:
    # A test over no files would pass whatever the code does.
    assert len(_modules("matching")) >= 9 and all(_modules(layer) for layer in LOWER_LAYERS)
