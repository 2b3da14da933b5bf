"""The tree is the architecture: no import cycles between modules or between the stages
(subpackages), a pure core, and benchmarks that use only the public API."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import talon_stream

PACKAGE = Path(talon_stream.__file__).parent
ROOT = Path(__file__).resolve().parents[2]

#: What the pure core may not import: I/O libraries and the adapters and configuration.
NOT_IN_CORE = (
    "aiohttp",
    "confluent_kafka",
    "httpx",
    "httptools",
    "pydantic_settings",
    "talon_stream.config",
    "talon_stream.kafka",
    "talon_stream.talon",
    "talon_stream.processing",
    "talon_stream.ops",
    "talon_stream.dlq",
)


def module_name(path: Path) -> str:
    if not path.is_relative_to(PACKAGE.parent):
        return path.stem
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> Iterator[str]:
    """Every module ``path`` imports, at module level or in a function, relative imports resolved.
    Imports under ``if TYPE_CHECKING:`` are left out: annotations create no dependency at run
    time."""
    inside = path.is_relative_to(PACKAGE)
    package = (
        module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    )
    package = package if inside else ""
    tree = ast.parse(path.read_text("utf-8"))
    typing_only = {
        id(child)
        for node in ast.walk(tree)
        if isinstance(node, ast.If)
        and ast.unparse(node.test) in {"TYPE_CHECKING", "typing.TYPE_CHECKING"}
        for statement in node.body
        for child in ast.walk(statement)
    }
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            submodules = [
                f"{base}.{alias.name}"
                for alias in node.names
                if (PACKAGE.parent / Path(*f"{base}.{alias.name}".split(".")))
                .with_suffix(".py")
                .exists()
            ]
            # `from package import module` depends on the module; anything else, on the package.
            yield from submodules if len(submodules) == len(node.names) else [base, *submodules]


def graph() -> dict[str, set[str]]:
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    edges: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for target in imports(path):
            # `from talon_stream.core import x` depends on the package, i.e. its __init__.
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name and target.startswith("talon_stream"):
                edges[name].add(target)
    return edges


def stage(module: str) -> str | None:
    """The stage a module belongs to: its subpackage, or a root module of its own; ``None`` for
    the root package, the facade that re-exports the stages."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def stage_edges(edges: dict[str, set[str]]) -> dict[str, set[str]]:
    stages: dict[str, set[str]] = {}
    for source, targets in edges.items():
        origin = stage(source)
        if origin is None:
            continue
        for target in targets:
            destination = stage(target)
            if destination is not None and destination != origin:
                stages.setdefault(origin, set()).add(destination)
    return stages


def test_no_module_imports_itself_round_a_cycle() -> None:
    assert find_cycle(graph()) is None


def test_no_stage_depends_on_itself_round_a_cycle() -> None:
    cycle = find_cycle(stage_edges(graph()))
    assert cycle is None, " → ".join(cycle or [])


def test_the_cycle_finder_finds_cycles() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(edges) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    assert find_cycle(
        stage_edges(
            {"talon_stream.x._a": {"talon_stream.y._b"}, "talon_stream.y._b": {"talon_stream.x._c"}}
        )
    ) == ["x", "y", "x"]


def test_the_core_is_pure() -> None:
    core = [
        path for path in PACKAGE.rglob("*.py") if module_name(path).startswith("talon_stream.core")
    ]
    assert core
    for path in core:
        for target in imports(path):
            assert not target.startswith(NOT_IN_CORE), f"{module_name(path)} imports {target}"


@pytest.mark.parametrize("script", sorted((ROOT / "bench").glob("*.py")), ids=lambda p: p.name)
def test_benchmarks_use_only_the_public_api(script: Path) -> None:
    for target in imports(script):
        if target.startswith("talon_stream"):
            assert "._" not in target, f"{script.name} imports the internal module {target}"
