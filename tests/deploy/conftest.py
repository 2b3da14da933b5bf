"""What the deployment tests share: the files under ``deploy/``, loaded once, and the offline
tools that check them (all from the ``dev`` extra: ``kubectl`` for kustomize, ``hadolint``,
``kubernetes-validate``'s schemas, ``check-jsonschema``'s copy of the Compose specification).

No Docker engine and no cluster are needed: everything here reads files and runs local binaries.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import AliasChoices

from talon_stream.config._settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
COMPOSE_FILE = DEPLOY / "compose.yaml"
DOCKERFILE = DEPLOY / "Dockerfile"
#: The overlays a user applies: KEDA (the default) and the HPA alternative.
OVERLAYS = {"keda": KUBERNETES, "hpa": KUBERNETES / "hpa"}


def tool(name: str) -> str:
    """A binary the ``dev`` extra installs into the venv beside this interpreter (the venv's
    ``bin`` need not be on PATH when pytest is run as ``.venv/bin/pytest``)."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is missing: install the dev extra (pip install -e '.[dev]')")
    return found


def load_all(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as stream:
        return [doc for doc in yaml.safe_load_all(stream) if doc is not None]


def kustomize(directory: Path) -> list[dict[str, Any]]:
    """The objects ``kubectl apply -k directory`` would send (kubectl's built-in kustomize)."""
    result = subprocess.run(
        [tool("kubectl"), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"kustomize build {directory} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc is not None]


def one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [obj for obj in objects if obj["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def settings_variables() -> dict[str, str]:
    """Every environment variable the worker reads, mapped to its ``Settings`` field."""
    prefix = Settings.model_config.get("env_prefix", "")
    names: dict[str, str] = {}
    for field_name, field in Settings.model_fields.items():
        names[f"{prefix}{field_name}".upper()] = field_name
        if isinstance(field.validation_alias, AliasChoices):
            for choice in field.validation_alias.choices:
                if isinstance(choice, str):
                    names[choice.upper()] = field_name
    return names


#: The label value of the notification receiver's objects (deploy/kubernetes/notifications).
RECEIVER = "notification-receiver"


def is_receiver(obj: dict[str, Any]) -> bool:
    labels = obj.get("metadata", {}).get("labels", {})
    return bool(labels.get("app.kubernetes.io/component") == RECEIVER)


@pytest.fixture(scope="session")
def built_all() -> dict[str, list[dict[str, Any]]]:
    """Each overlay, built once for the whole run."""
    return {name: kustomize(path) for name, path in OVERLAYS.items()}


@pytest.fixture(scope="session")
def built(built_all: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """Each overlay's worker objects (the notification receiver's are checked apart)."""
    return {name: [o for o in objects if not is_receiver(o)] for name, objects in built_all.items()}


@pytest.fixture(scope="session")
def receiver_built(built_all: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """Each overlay's notification receiver objects."""
    return {name: [o for o in objects if is_receiver(o)] for name, objects in built_all.items()}


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    (document,) = load_all(COMPOSE_FILE)
    return document


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No TALON_STREAM_* or KAFKA_* variable of the machine leaks into a settings check."""
    for name in settings_variables():
        monkeypatch.delenv(name, raising=False)
    return monkeypatch
