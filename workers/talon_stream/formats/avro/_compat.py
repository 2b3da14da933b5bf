"""Backward compatibility of the schemas: the current schema must read whatever was written with
any released version (Avro schema resolution; the registry's ``BACKWARD_TRANSITIVE``).

The released versions are kept in ``schemas/history/<name>/v<N>.avsc`` (standalone text), so the
check needs neither a registry nor git history and runs on a clean clone. Two checks:

* :func:`check_backward` — structural, by the resolution rules of the Avro specification: a
  field the reader has and the writer lacks needs a default; types must be equal or promotable
  (int → long → float → double, string ↔ bytes); every branch of a writer union must resolve to
  the reader; enum symbols and fixed sizes must fit; records and named types match by name;
* :func:`check_data` — records generated from the old schema (``fastavro.utils``), written
  with it and read back with the new one.

Run it, and release the current schemas as the next versions::

    python -m talon_stream.formats.avro            # exit 1 when a schema breaks a released version
    python -m talon_stream.formats.avro --release  # after a compatible change: writes v<N+1>.avsc

``tests/unit/test_avro_compat.py`` runs the same check in the test suite.
"""

from __future__ import annotations

import argparse
import io
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastavro
import orjson
from fastavro.utils import generate_many

from talon_stream.formats.avro._schemas import SCHEMA_DIR, AvroSchema, SchemaSet, load_schemas

__all__ = [
    "HISTORY_DIR",
    "Incompatibility",
    "Released",
    "check_all",
    "check_backward",
    "check_data",
    "history",
    "main",
    "release",
]

HISTORY_DIR = SCHEMA_DIR / "history"

_PROMOTIONS: Mapping[str, frozenset[str]] = {
    "int": frozenset(("long", "float", "double")),
    "long": frozenset(("float", "double")),
    "float": frozenset(("double",)),
    "string": frozenset(("bytes",)),
    "bytes": frozenset(("string",)),
}
_PRIMITIVES = frozenset(("null", "boolean", "int", "long", "float", "double", "bytes", "string"))


@dataclass(frozen=True)
class Incompatibility:
    """Why data written with the old schema cannot be read with the new one, at ``path``."""

    path: str
    problem: str

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


@dataclass(frozen=True)
class Released:
    """One released version of a schema."""

    name: str
    version: int
    path: Path

    @property
    def schema(self) -> Any:
        return orjson.loads(self.path.read_bytes())


def history(name: str, directory: Path = HISTORY_DIR) -> list[Released]:
    """The released versions of schema ``name``, oldest first."""
    found = []
    for path in (directory / name).glob("v*.avsc"):
        number = path.stem[1:]
        if number.isdigit():
            found.append(Released(name, int(number), path))
    return sorted(found, key=lambda released: released.version)


def check_backward(writer: Any, reader: Any) -> list[Incompatibility]:
    """What keeps ``reader`` from reading data written with ``writer`` (both standalone schemas,
    as JSON values); empty when it can."""
    checker = _Checker(_names(writer), _names(reader))
    checker.resolve(writer, reader, _label(reader))
    return checker.problems


def check_data(writer: Any, reader: Any, *, count: int = 200) -> list[Incompatibility]:
    """Write ``count`` generated records with ``writer`` and read them with ``reader``."""
    parsed_writer = fastavro.parse_schema(writer)
    parsed_reader = fastavro.parse_schema(reader)
    for number, datum in enumerate(generate_many(parsed_writer, count)):
        buffer = io.BytesIO()
        fastavro.schemaless_writer(buffer, parsed_writer, datum)
        buffer.seek(0)
        try:
            fastavro.schemaless_reader(buffer, parsed_writer, parsed_reader)
        except Exception as exc:  # noqa: BLE001 - any failure to read is the finding
            return [Incompatibility(_label(reader), f"generated record {number}: {exc}")]
    return []


def check_all(
    current: SchemaSet, directory: Path = HISTORY_DIR, *, count: int = 200
) -> dict[str, list[Incompatibility]]:
    """Every current schema against every released version of it: ``{"name vN": problems}``
    (only the versions with problems)."""
    found: dict[str, list[Incompatibility]] = {}
    for schema in current:
        reader = orjson.loads(schema.text)
        for released in history(schema.name, directory):
            writer = released.schema
            problems = check_backward(writer, reader) or check_data(writer, reader, count=count)
            if problems:
                found[f"{schema.name} v{released.version}"] = problems
    return found


def release(current: SchemaSet, directory: Path = HISTORY_DIR) -> list[Path]:
    """Write each current schema that differs from its latest released version (or has none) as
    the next version; returns the files written. Call :func:`check_all` first."""
    written = []
    for schema in current:
        versions = history(schema.name, directory)
        if versions and versions[-1].schema == orjson.loads(schema.text):
            continue
        path = directory / schema.name / f"v{versions[-1].version + 1 if versions else 1}.avsc"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_pretty(schema))
        written.append(path)
    return written


def _pretty(schema: AvroSchema) -> bytes:
    return orjson.dumps(orjson.loads(schema.text), option=orjson.OPT_INDENT_2) + b"\n"


def main(argv: list[str] | None = None) -> int:
    """``python -m talon_stream.formats.avro [--release]``."""
    parser = argparse.ArgumentParser(
        prog="python -m talon_stream.formats.avro",
        description="Check the Avro schemas against their released versions (schemas/history).",
    )
    parser.add_argument(
        "--release", action="store_true", help="then write changed schemas as new versions"
    )
    parser.add_argument("--history", type=Path, default=HISTORY_DIR, help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    current = load_schemas()
    found = check_all(current, arguments.history)
    for where, problems in found.items():
        for problem in problems:
            print(f"INCOMPATIBLE {where}: {problem}")
    if found:
        return 1
    names = ", ".join(schema.name for schema in current)
    print(f"backward compatible with every released version: {names}")
    if arguments.release:
        for path in release(current, arguments.history):
            print(f"released {path}")
    return 0


# --- the structural check -----------------------------------------------------------------------


def _names(schema: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for branch in node:
                walk(branch)
        elif isinstance(node, dict):
            kind = node.get("type")
            if kind in ("record", "error", "enum", "fixed"):
                found[node["name"]] = node
                for field in node.get("fields", ()):
                    walk(field["type"])
            elif kind == "array":
                walk(node["items"])
            elif kind == "map":
                walk(node["values"])
            elif isinstance(kind, dict | list):
                walk(kind)

    walk(schema)
    return found


def _label(schema: Any) -> str:
    if isinstance(schema, dict) and "name" in schema:
        return str(schema["name"]).rpartition(".")[2]
    return "(union)" if isinstance(schema, list) else str(schema)


def _kind(schema: Any) -> str:
    """``record``, ``array``, … or the primitive's name."""
    if isinstance(schema, list):
        return "union"
    if isinstance(schema, dict):
        kind = schema["type"]
        return _kind(kind) if isinstance(kind, dict | list) else str(kind)
    return str(schema)


class _Checker:
    def __init__(self, writer_names: dict[str, Any], reader_names: dict[str, Any]) -> None:
        self._writer_names = writer_names
        self._reader_names = reader_names
        self._seen: set[tuple[str, str]] = set()
        self.problems: list[Incompatibility] = []

    def _writer(self, schema: Any) -> Any:
        return self._deref(schema, self._writer_names)

    def _reader(self, schema: Any) -> Any:
        return self._deref(schema, self._reader_names)

    @staticmethod
    def _deref(schema: Any, names: dict[str, Any]) -> Any:
        while True:
            if isinstance(schema, str) and schema in names:
                schema = names[schema]
            elif isinstance(schema, dict) and isinstance(schema.get("type"), dict | list):
                schema = schema["type"]
            elif isinstance(schema, dict) and schema.get("type") in _PRIMITIVES:
                schema = schema["type"]  # a primitive with a logical type
            else:
                return schema

    def matches(self, writer: Any, reader: Any) -> bool:
        """Whether a reader union would pick ``reader`` for ``writer`` (by kind and name)."""
        writer, reader = self._writer(writer), self._reader(reader)
        wkind, rkind = _kind(writer), _kind(reader)
        if wkind in ("record", "error", "enum", "fixed"):
            return wkind == rkind and _same_name(writer, reader)
        if wkind == rkind:
            return True
        return rkind in _PROMOTIONS.get(wkind, frozenset())

    def resolve(self, writer: Any, reader: Any, path: str) -> None:
        writer, reader = self._writer(writer), self._reader(reader)
        if isinstance(writer, list):
            for branch in writer:
                self.resolve(branch, reader, f"{path}<{_label(self._writer(branch))}>")
            return
        if isinstance(reader, list):
            for branch in reader:
                if self.matches(writer, branch):
                    self.resolve(writer, branch, path)
                    return
            self._problem(path, f"the new union has no branch for the old {_label(writer)}")
            return
        wkind, rkind = _kind(writer), _kind(reader)
        if wkind != rkind:
            if rkind not in _PROMOTIONS.get(wkind, frozenset()):
                self._problem(path, f"was {wkind}, now {rkind}: not a promotion Avro allows")
            return
        if wkind in ("record", "error"):
            self._record(writer, reader, path)
        elif wkind == "enum":
            if not _same_name(writer, reader):
                self._problem(path, f"enum {writer['name']} is now {reader['name']}")
            missing = set(writer["symbols"]) - set(reader["symbols"])
            if missing and "default" not in reader:
                self._problem(path, f"enum symbols removed without a default: {sorted(missing)}")
        elif wkind == "fixed":
            if not _same_name(writer, reader) or writer["size"] != reader["size"]:
                self._problem(path, "fixed name or size changed")
        elif wkind == "array":
            self.resolve(writer["items"], reader["items"], f"{path}[]")
        elif wkind == "map":
            self.resolve(writer["values"], reader["values"], f"{path}{{}}")

    def _record(self, writer: dict[str, Any], reader: dict[str, Any], path: str) -> None:
        if not _same_name(writer, reader):
            self._problem(path, f"record {writer['name']} is now {reader['name']}")
            return
        pair = (orjson.dumps(writer).decode(), orjson.dumps(reader).decode())
        if pair in self._seen:  # a recursive type: already being checked
            return
        self._seen.add(pair)
        written = {field["name"]: field for field in writer["fields"]}
        for field in reader["fields"]:
            names = [field["name"], *field.get("aliases", ())]
            old = next((written[name] for name in names if name in written), None)
            where = f"{path}.{field['name']}"
            if old is None:
                if "default" not in field:
                    self._problem(where, "a new field without a default")
                continue
            self.resolve(old["type"], field["type"], where)

    def _problem(self, path: str, problem: str) -> None:
        self.problems.append(Incompatibility(path, problem))


def _same_name(writer: dict[str, Any], reader: dict[str, Any]) -> bool:
    short = str(writer["name"]).rpartition(".")[2]
    accepted = {str(reader["name"]), *(str(alias) for alias in reader.get("aliases", ()))}
    return writer["name"] in accepted or short in {name.rpartition(".")[2] for name in accepted}
