"""The public surface is deliberate: each public package lists what it exports in a sorted
``__all__``, exports everything it imports for its users, and nothing internal or another
stage's."""

from __future__ import annotations

import importlib
import pkgutil
import types

import pytest

import talon_stream


def public_modules() -> list[str]:
    """``talon_stream`` and every package or module in it whose dotted name has no part that
    starts with an underscore."""
    found = pkgutil.walk_packages(talon_stream.__path__, "talon_stream.")
    public = [info.name for info in found]
    internal = [n for n in public if any(p.startswith("_") for p in n.split("."))]
    return ["talon_stream"] + [n for n in public if n not in internal]


PUBLIC = public_modules()


def isort_style(name: str) -> tuple[int, str]:
    """Ruff's ``__all__`` order (RUF022): constants, then classes, then the rest."""
    if name.isupper():
        return (0, name)
    return (1 if name[0].isupper() else 2, name)


def test_every_stage_is_a_public_package() -> None:
    stages = {"cli", "config", "core", "demo", "dlq", "formats", "kafka", "ops", "processing"}
    stages |= {"scheduling", "talon", "whatif"}
    assert {f"talon_stream.{stage}" for stage in stages} <= set(PUBLIC)


@pytest.mark.parametrize("name", PUBLIC)
def test_all_is_sorted_unique_and_importable(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    assert exported == sorted(exported, key=isort_style), f"{name}.__all__ is not sorted"
    assert len(set(exported)) == len(exported)
    for attribute in exported:
        assert hasattr(module, attribute), f"{name}.{attribute} is listed but not defined"


@pytest.mark.parametrize("name", PUBLIC)
def test_nothing_public_is_missing_from_all(name: str) -> None:
    module = importlib.import_module(name)
    public = {
        attribute
        for attribute, value in vars(module).items()
        if not attribute.startswith("_")
        and not isinstance(value, types.ModuleType)
        and attribute != "annotations"
    }
    if module.__name__ == name and hasattr(module, "__path__"):
        # A package's namespace holds only what its __init__ imports for its users.
        assert public <= set(module.__all__), (
            f"{name} does not export {public - set(module.__all__)}"
        )


@pytest.mark.parametrize("name", PUBLIC)
def test_nothing_internal_or_of_another_stage_leaks_into_all(name: str) -> None:
    module = importlib.import_module(name)
    for attribute in module.__all__:
        assert not attribute.startswith("_") or attribute == "__version__"
        defined_in = getattr(getattr(module, attribute), "__module__", None)
        if not isinstance(defined_in, str) or not defined_in.startswith("talon_stream"):
            continue  # constants, aliases, typing forms
        owner = name if name == "talon_stream" else ".".join(name.split(".")[:2])
        assert defined_in.startswith(owner), f"{name}.{attribute} comes from {defined_in}"


def test_every_exported_error_derives_from_the_root() -> None:
    errors = [getattr(talon_stream, n) for n in talon_stream.__all__ if n.endswith("Error")]
    assert len(errors) >= 10
    assert all(issubclass(error, talon_stream.TalonStreamError) for error in errors)


def test_the_old_top_level_names_are_gone() -> None:
    for name in ("workers", "emulator"):
        spec = importlib.util.find_spec(name)
        assert (
            spec is None
            or spec.origin is not None
            or not spec.submodule_search_locations
            or ("talon_stream" not in str(spec.submodule_search_locations))
        )
