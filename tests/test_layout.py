"""The package layout of docs/design.md ("Layout"): no layer imports one that builds on it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import receiver

ROOT = Path(receiver.__file__).parent


def imported_modules(package: str) -> set[str]:
    """Every ``receiver...`` module the package's files import, at any depth of the code."""
    found: set[str] = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.startswith("receiver.")}


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("http", ("receiver.console", "receiver.app")),
        ("console", ("receiver.http", "receiver.app")),
        ("services", ("receiver.http", "receiver.console", "receiver.app", "receiver.cli")),
        ("tools", ("receiver.cli",)),
        ("core", ("receiver.http", "receiver.console", "receiver.services", "receiver.store")),
    ],
)
def test_a_package_does_not_import_what_builds_on_it(
    package: str, forbidden: tuple[str, ...]
) -> None:
    inversions = sorted(
        name
        for name in imported_modules(package)
        if any(name == prefix or name.startswith(prefix + ".") for prefix in forbidden)
    )
    assert inversions == []


def test_the_check_sees_imports() -> None:
    assert "receiver.services.state.AppState" in imported_modules("http")
    assert "receiver.errors.UsageError" in imported_modules("tools")
