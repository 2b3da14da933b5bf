"""talon_one_emulator is layered: no import cycle among its modules or among its subpackages,
counting imports inside functions and under ``if TYPE_CHECKING:`` too; and code outside the
emulator's own tests imports only its curated public API (the root package's ``__all__``)."""

from __future__ import annotations

import ast
import graphlib
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

import talon_one_emulator

ROOT = "talon_one_emulator"
PACKAGE_DIR = Path(talon_one_emulator.__file__).parent
REPO = Path(__file__).resolve().parents[2]
#: Where the emulator is used from outside; tests/emulator tests its internals on purpose.
USERS = ("bench", "tests", "workers")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE_DIR.rglob("*.py"))}


def imported(name: str, modules: Mapping[str, Path]) -> Iterator[str]:
    """The package's modules that module ``name`` imports anywhere in it, relative imports
    resolved; ``from package import module`` names the module, ``from module import x`` the
    module."""
    path = modules[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target:
                yield target


def module_graph(modules: Mapping[str, Path]) -> dict[str, set[str]]:
    return {
        name: {target for target in imported(name, modules) if target != name} for name in modules
    }


def part(module: str) -> str:
    """The top-level piece a module belongs to: its subpackage, else the root module itself
    (the root package is ``talon_one_emulator``)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else module


def subpackage_graph(edges: Mapping[str, set[str]]) -> dict[str, set[str]]:
    parts: dict[str, set[str]] = {}
    for source, targets in edges.items():
        parts.setdefault(part(source), set()).update(
            part(target) for target in targets if part(target) != part(source)
        )
    return parts


def cycle_in(edges: Mapping[str, set[str]]) -> list[str] | None:
    """One import cycle (``a → b → a``), or ``None``."""
    try:
        graphlib.TopologicalSorter(edges).prepare()
    except graphlib.CycleError as exc:
        return list(reversed(exc.args[1]))
    return None


def outside_imports() -> Iterator[tuple[str, str, str]]:
    """``(file, module, name)`` of every ``from talon_one_emulator... import name`` outside the
    package and its own tests."""
    own_tests = REPO / "tests" / "emulator"
    for folder in USERS:
        for path in sorted((REPO / folder).rglob("*.py")):
            if path.is_relative_to(own_tests):
                continue
            for node in ast.walk(ast.parse(path.read_text("utf-8"))):
                if isinstance(node, ast.Import):
                    found = [(a.name, "") for a in node.names if a.name.startswith(ROOT)]
                elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(ROOT):
                    found = [(node.module or "", a.name) for a in node.names]
                else:
                    continue
                for module, name in found:
                    yield str(path.relative_to(REPO)), module, name


def test_no_module_imports_itself_round_a_cycle() -> None:
    cycle = cycle_in(module_graph(MODULES))
    assert cycle is None, " → ".join(cycle or [])


def test_no_subpackage_imports_itself_round_a_cycle() -> None:
    cycle = cycle_in(subpackage_graph(module_graph(MODULES)))
    assert cycle is None, " → ".join(cycle or [])


def test_every_module_is_in_the_graph() -> None:
    assert {"talon_one_emulator.rules.engine", "talon_one_emulator.store.state"} <= set(MODULES)
    assert {"api", "campaigns", "http", "models", "render", "rules", "store"} <= {
        part(name) for name in MODULES
    }


def test_the_cycle_finder_finds_cycles() -> None:
    assert cycle_in({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) in (
        ["a", "b", "c", "a"],
        ["b", "c", "a", "b"],
        ["c", "a", "b", "c"],
    )
    assert cycle_in({"a": {"b"}, "b": set()}) is None
    layered = {f"{ROOT}.x.a": {f"{ROOT}.y.b"}, f"{ROOT}.y.b": {f"{ROOT}.x.c"}}
    assert cycle_in(subpackage_graph(layered)) in (["x", "y", "x"], ["y", "x", "y"])


def test_function_level_and_type_checking_imports_count(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("def f() -> None:\n    from . import b\n")
    (tmp_path / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import f\n"
    )
    (tmp_path / "__init__.py").write_text("")
    modules = {f"{ROOT}.a": tmp_path / "a.py", f"{ROOT}.b": tmp_path / "b.py"}
    modules[ROOT] = tmp_path / "__init__.py"
    edges = module_graph(modules)
    assert edges[f"{ROOT}.a"] == {f"{ROOT}.b"}
    assert edges[f"{ROOT}.b"] == {f"{ROOT}.a"}
    assert cycle_in(edges) is not None


def isort_style(name: str) -> tuple[int, str]:
    """Ruff's ``__all__`` order (RUF022): constants, then classes, then the rest."""
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


def test_all_is_sorted_unique_and_importable() -> None:
    exported = talon_one_emulator.__all__
    assert exported == sorted(exported, key=isort_style), "__all__ is not sorted"
    assert len(set(exported)) == len(exported)
    for name in exported:
        assert hasattr(talon_one_emulator, name), f"{name} is listed but not importable"
        defined_in = getattr(getattr(talon_one_emulator, name), "__module__", ROOT)
        assert defined_in.startswith(ROOT), f"{name} comes from {defined_in}"


@pytest.mark.parametrize(
    ("where", "module", "name"), list(outside_imports()), ids=lambda value: str(value)
)
def test_code_outside_imports_only_the_public_api(where: str, module: str, name: str) -> None:
    assert module == ROOT, f"{where} imports {module}: import from {ROOT} instead"
    assert name in talon_one_emulator.__all__, f"{where} uses {name}, missing from __all__"


def test_outside_users_are_found() -> None:
    names = {name for _, _, name in outside_imports()}
    assert {"EmulatorConfig", "EmulatorServer", "run_forever"} <= names
