"""Imports between apps are made at the top of a module (issue 21): one made inside a function hides
a dependency from the reader, and from `lint-imports` only until it runs. The few that must wait
are listed with their reason in ``pyproject.toml`` (``[tool.floodlight.function_level_imports]``)."""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterator
from fnmatch import fnmatchcase
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("studyserver", "generator", "analysis")


def _exceptions() -> dict[str, str]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    return config["tool"]["floodlight"]["function_level_imports"]


def _unit(module: str) -> str:
    """The app a module belongs to: ``studyserver.<app>``, or the top package elsewhere."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "studyserver" and len(parts) > 1 else parts[0]


def _is_test_module(path: Path) -> bool:
    return "tests" in path.parts or path.name == "tests.py" or path.name.startswith("test_")


def function_level_imports(source: str, module: str, is_package: bool = False) -> Iterator[tuple[int, str]]:
    """``(line, imported module)`` for every import made inside a function or method."""
    package = module.split(".") if is_package else module.split(".")[:-1]

    def absolute(node: ast.ImportFrom) -> str:
        if not node.level:
            return node.module or ""
        base = package[: len(package) - (node.level - 1)]
        return ".".join([*base, node.module] if node.module else base)

    def walk(node: ast.AST, in_function: bool) -> Iterator[tuple[int, str]]:
        for child in ast.iter_child_nodes(node):
            if in_function and isinstance(child, ast.Import):
                yield from ((child.lineno, alias.name) for alias in child.names)
            elif in_function and isinstance(child, ast.ImportFrom):
                yield child.lineno, absolute(child)
            yield from walk(child, in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef))

    yield from walk(ast.parse(source), False)


def between_apps(source: str, module: str, is_package: bool = False) -> list[str]:
    """``"<module> -> <imported>"`` for each function-level import of another app or package."""
    return [f"{module} -> {target}" for _, target in function_level_imports(source, module, is_package)
            if target.split(".")[0] in PACKAGES and _unit(target) != _unit(module)]


def _shipped_modules() -> Iterator[tuple[Path, str]]:
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            relative = path.relative_to(REPO)
            if _is_test_module(relative) or "migrations" in relative.parts:
                continue
            yield path, ".".join(relative.with_suffix("").parts).removesuffix(".__init__")


def _found() -> list[str]:
    return [edge for path, module in _shipped_modules()
            for edge in between_apps(path.read_text(), module, path.name == "__init__.py")]


def _allowed(edge: str, pattern: str) -> bool:
    source, target = edge.split(" -> ")
    wanted_source, wanted_target = pattern.split(" -> ")
    return fnmatchcase(source, wanted_source) and (
        fnmatchcase(target, wanted_target) or target.startswith(wanted_target + "."))


def test_imports_between_apps_are_at_module_top_except_the_listed_ones():
    exceptions = _exceptions()
    unexplained = [edge for edge in _found() if not any(_allowed(edge, pattern) for pattern in exceptions)]
    assert unexplained == []


def test_every_listed_exception_has_a_reason_and_is_still_used():
    found = _found()
    for pattern, reason in _exceptions().items():
        assert len(reason.split()) >= 5, pattern
        assert any(_allowed(edge, pattern) for edge in found), f"{pattern} is no longer needed"


def test_the_walk_sees_the_whole_tree():
    modules = [module for _, module in _shipped_modules()]
    assert "studyserver.survey.flow.navigation" in modules and "generator.service" in modules
    assert len(modules) > 150


@pytest.mark.parametrize(("source", "module", "expected"), [
    ("def f():\n    from studyserver.geo.models import District\n",
     "studyserver.studies.models", ["studyserver.studies.models -> studyserver.geo.models"]),
    ("class A:\n    def m(self):\n        import generator.service\n",
     "studyserver.treatments.tasks", ["studyserver.treatments.tasks -> generator.service"]),
    ("def f():\n    from ..geo import services\n",
     "studyserver.survey.views", ["studyserver.survey.views -> studyserver.geo"]),
    ("def f():\n    from . import services\n", "studyserver.survey.views", []),
    ("from studyserver.geo.models import District\n", "studyserver.studies.models", []),
    ("def f():\n    import torch\n", "generator.pipeline", []),
    ("async def f():\n    def g():\n        from analysis import cli\n",
     "studyserver.exports.api", ["studyserver.exports.api -> analysis"]),
])
def test_the_walk_finds_planted_imports(source, module, expected):
    assert between_apps(source, module) == expected


def test_a_relative_import_in_a_package_init_resolves_from_the_package():
    assert between_apps("def f():\n    from ...geo import models\n", "studyserver.survey.flow", True) == [
        "studyserver.survey.flow -> studyserver.geo"]
