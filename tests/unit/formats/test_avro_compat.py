"""Schema changes are checked for backward compatibility against the released versions in
``schemas/history`` (also: ``python -m talon_stream.formats.avro``)."""

from __future__ import annotations

import copy
import io
from pathlib import Path
from typing import Any

import fastavro
import orjson
import pytest
from fastavro.utils import generate_many

from talon_stream.formats.avro._compat import (
    HISTORY_DIR,
    check_all,
    check_backward,
    check_data,
    history,
    main,
    release,
)
from talon_stream.formats.avro._schemas import schemas

SCHEMAS = schemas()


def current(name: str) -> Any:
    return orjson.loads(SCHEMAS[name].text)


def test_every_schema_has_a_released_version() -> None:
    for schema in SCHEMAS:
        assert history(schema.name), f"{schema.name} has no version in {HISTORY_DIR}"


def test_the_current_schemas_read_everything_the_released_versions_wrote() -> None:
    assert check_all(SCHEMAS) == {}


@pytest.mark.parametrize("name", [schema.name for schema in SCHEMAS])
def test_data_written_with_the_previous_version_is_read_with_the_current_one(name: str) -> None:
    previous = fastavro.parse_schema(history(name)[-1].schema)
    reader = fastavro.parse_schema(current(name))
    for datum in generate_many(previous, 50):
        buffer = io.BytesIO()
        fastavro.schemaless_writer(buffer, previous, datum)
        buffer.seek(0)
        fastavro.schemaless_reader(buffer, previous, reader)


def envelope_with(change: Any) -> Any:
    schema = copy.deepcopy(current("effects-envelope"))
    change(schema["fields"])
    return schema


def test_a_new_field_needs_a_default() -> None:
    old = current("effects-envelope")
    new = envelope_with(lambda fields: fields.append({"name": "added", "type": "string"}))
    [problem] = check_backward(old, new)
    assert str(problem) == "EffectsEnvelope.added: a new field without a default"
    assert check_data(old, new, count=5)  # the data check agrees
    fixed = envelope_with(
        lambda fields: fields.append({"name": "added", "type": "string", "default": ""})
    )
    assert check_backward(old, fixed) == []
    assert check_data(old, fixed, count=20) == []


def test_a_removed_field_is_fine_for_readers() -> None:
    old = current("effects-envelope")
    new = envelope_with(lambda fields: fields.pop())
    assert check_backward(old, new) == []


@pytest.mark.parametrize(
    ("old_type", "new_type", "compatible"),
    [
        ("int", "long", True),
        ("long", "double", True),
        ("string", "bytes", True),
        ("long", "int", False),
        ("int", "string", False),
        ("string", ["null", "string"], True),
        (["null", "string"], "string", False),
        (["null", "string", "long"], ["null", "string"], False),
    ],
)
def test_type_changes_follow_the_resolution_rules(
    old_type: Any, new_type: Any, compatible: bool
) -> None:
    def schema(kind: Any) -> Any:
        return {"type": "record", "name": "R", "fields": [{"name": "f", "type": kind}]}

    problems = check_backward(schema(old_type), schema(new_type))
    assert (problems == []) is compatible, problems


def test_a_removed_event_type_breaks_the_union() -> None:
    old = current("event")
    new = copy.deepcopy(old)
    new.pop()  # product.deleted
    problems = check_backward(old, new)
    assert [str(p) for p in problems] == [
        "(union)<ProductDeleted>: the new union has no branch for the old ProductDeleted"
    ]


def test_enums_need_their_symbols_or_a_default() -> None:
    def schema(symbols: list[str], **more: Any) -> Any:
        kind = {"type": "enum", "name": "E", "symbols": symbols, **more}
        return {"type": "record", "name": "R", "fields": [{"name": "e", "type": kind}]}

    assert check_backward(schema(["A", "B"]), schema(["A"]))
    assert check_backward(schema(["A", "B"]), schema(["A"], default="A")) == []
    assert check_backward(schema(["A"]), schema(["A", "B"])) == []


def test_a_release_writes_the_next_version_only_when_the_schema_changed(tmp_path: Path) -> None:
    written = release(SCHEMAS, tmp_path)
    assert {path.parent.name for path in written} == {schema.name for schema in SCHEMAS}
    assert all(path.name == "v1.avsc" for path in written)
    assert release(SCHEMAS, tmp_path) == []  # nothing changed
    assert check_all(SCHEMAS, tmp_path) == {}
    older = tmp_path / "effects-envelope" / "v1.avsc"
    schema = orjson.loads(older.read_bytes())
    schema["fields"] = schema["fields"][:-1]  # "released" without processedAt
    older.write_bytes(orjson.dumps(schema))
    found = check_all(SCHEMAS, tmp_path)
    assert list(found) == ["effects-envelope v1"]
    assert "processedAt: a new field without a default" in str(found["effects-envelope v1"][0])
    assert main(["--history", str(tmp_path)]) == 1


def test_the_command_passes_on_the_repository(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    assert "backward compatible with every released version" in capsys.readouterr().out
