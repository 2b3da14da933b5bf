"""``deploy/Dockerfile``: hadolint finds nothing; its stages parse (``dockerfile-parse``) into a
builder and a slim runtime that installs nothing, runs as a numeric non-root user, starts
``talon-stream run`` and carries its labels; the build context (``.dockerignore``) keeps what the
builder copies and what packaging needs."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from typing import Any

import pytest
from dockerfile_parse import DockerfileParser

from .conftest import DOCKERFILE, ROOT, tool

BUILD_TOOLS = re.compile(r"\b(apt-get|apk|gcc|make|pip install|pip wheel|build-essential)\b")


def _parser() -> DockerfileParser:
    return DockerfileParser(path=str(DOCKERFILE))


def _stages() -> dict[str, list[dict[str, Any]]]:
    """Instructions by stage name (``FROM … AS name``)."""
    stages: dict[str, list[dict[str, Any]]] = {}
    current: list[dict[str, Any]] | None = None
    for instruction in _parser().structure:
        if instruction["instruction"] == "FROM":
            name = instruction["value"].split()[-1]
            current = stages.setdefault(name, [])
        elif current is not None and instruction["instruction"] != "COMMENT":
            current.append(instruction)
    return stages


def _values(stage: list[dict[str, Any]], instruction: str) -> list[str]:
    return [entry["value"] for entry in stage if entry["instruction"] == instruction]


def _dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_hadolint_finds_nothing():
    result = subprocess.run(
        [tool("hadolint"), "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def test_two_stages_on_the_slim_python_311_image():
    parser = _parser()
    assert parser.is_multistage
    assert list(_stages()) == ["builder", "runtime"]
    for image in parser.parent_images:
        assert re.fullmatch(r"python:3\.11-slim(-\w+)?", image), image


def test_the_runtime_stage_installs_nothing_and_copies_only_the_venv():
    runtime = _stages()["runtime"]
    for command in _values(runtime, "RUN"):
        assert not BUILD_TOOLS.search(command), f"build tooling in the runtime stage: {command}"
    copies = _values(runtime, "COPY")
    assert copies == ["--from=builder /opt/venv /opt/venv"]
    assert not _values(runtime, "ADD")


def test_the_image_runs_talon_stream_run_as_a_numeric_non_root_user():
    parser = _parser()
    runtime = _stages()["runtime"]
    (user,) = _values(runtime, "USER")
    uid, _, gid = user.partition(":")
    assert uid.isdigit(), "runAsNonRoot needs a numeric UID"
    assert gid.isdigit()
    assert int(uid) != 0
    assert int(gid) != 0
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]["scripts"]
    (entrypoint,) = _values(runtime, "ENTRYPOINT")
    (cmd,) = _values(runtime, "CMD")
    assert json.loads(entrypoint) == ["talon-stream"]
    assert "talon-stream" in scripts
    assert json.loads(cmd) == ["run"]
    assert "/opt/venv/bin" in parser.envs["PATH"]
    assert not [s for s in parser.structure if s["instruction"] == "HEALTHCHECK"]


@pytest.mark.parametrize(
    "label",
    [
        "org.opencontainers.image.title",
        "org.opencontainers.image.description",
        "org.opencontainers.image.version",
        "org.opencontainers.image.licenses",
        "org.opencontainers.image.base.name",
    ],
)
def test_the_image_is_labelled(label):
    labels = _parser().labels
    assert labels.get(label), f"{label} is missing or empty"


def test_the_build_context_keeps_what_the_builder_copies():
    ignore = _dockerignore()
    assert ignore[0] == "*", ".dockerignore lists what goes in, after excluding everything"
    kept = {line.removeprefix("!").rstrip("/") for line in ignore if line.startswith("!")}
    copied: set[str] = set()
    for value in _values(_stages()["builder"], "COPY"):
        *sources, _destination = value.split()
        copied.update(source.rstrip("/") for source in sources)
    assert copied <= kept
    for source in copied:
        assert (ROOT / source).exists(), source
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    assert project["project"]["readme"] in copied  # setuptools reads it to build the wheel
    source_roots = project["tool"]["setuptools"]["packages"]["find"]["where"]
    assert set(source_roots) <= copied


def test_the_default_build_leaves_the_demo_out():
    """A production image carries neither the demo's code nor the embedded broker: the demo's
    package is removed before the wheel is built unless WITH_DEMO=1, and the image installs no
    ``[demo]`` extra (the broker's wheel)."""
    builder = _stages()["builder"]
    (declared,) = [arg for arg in _values(builder, "ARG") if arg.startswith("WITH_DEMO")]
    assert declared == "WITH_DEMO=0"
    runs = _values(builder, "RUN")
    removal = next(i for i, run in enumerate(runs) if "rm -rf workers/talon_stream/demo" in run)
    wheel = next(i for i, run in enumerate(runs) if "pip wheel" in run)
    assert removal < wheel, "the demo must be gone before the wheel is built"
    assert '"${WITH_DEMO}" != "1"' in runs[removal]
    assert not any("[demo]" in run for run in runs)


def test_the_cli_says_what_to_do_when_the_demo_is_left_out(monkeypatch):
    from click.testing import CliRunner

    import talon_stream.cli._main as cli_main

    monkeypatch.setattr(cli_main.importlib.util, "find_spec", lambda name: None)
    result = CliRunner().invoke(cli_main.main, ["produce", "--events", "1"])
    assert result.exit_code == 2
    assert "WITH_DEMO=1" in result.output
    assert "talon-stream produce" in result.output
