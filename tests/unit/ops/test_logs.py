"""JSON log lines: one object per line, with the record's coordinates and IDs."""

from __future__ import annotations

import logging
import sys

import orjson
import pytest
from click.testing import CliRunner

from talon_stream._exceptions import TalonPermanentError
from talon_stream.cli import main
from talon_stream.ops._logs import JsonFormatter, setup_logging
from tests.fakes import ScriptedTalon, Sink
from tests.unit.processing.test_processor import CART, _call, processor, record


async def test_a_dead_lettered_record_is_logged_as_json_with_its_coordinates(
    capsys: pytest.CaptureFixture[str],
) -> None:
    setup_logging("info", "json")
    try:
        refused = TalonPermanentError("invalid", call=_call(), status=400, body="{}")
        await processor(ScriptedTalon(refused), Sink(), []).process(record(orjson.dumps(CART)))
    finally:
        setup_logging("warning", "text")
    lines = [orjson.loads(line) for line in capsys.readouterr().err.splitlines() if line]
    [dead] = [line for line in lines if "to the DLQ" in line["message"]]
    assert dead["level"] == "WARNING"
    assert dead["logger"] == "talon_stream.dlq._writer"
    assert dead["time"].endswith("Z")
    assert dead["topic"] == "shop.carts"
    assert dead["partition"] == 2
    assert dead["offset"] == 7
    assert dead["profileId"] == "c-1"
    assert dead["sessionId"] == "s-1"
    assert dead["errorClass"] == "TalonPermanentError"
    assert dead["status"] == 400
    assert len(dead["envelopeId"]) == 36


def test_exceptions_and_odd_values_still_make_one_json_line() -> None:
    formatter = JsonFormatter()
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed %s", ("it",), None)
        record.exc_info = sys.exc_info()
    record.__dict__["offset"] = object()  # not JSON: written as its str()
    line = orjson.loads(formatter.format(record))
    assert line["message"] == "failed it"
    assert "ValueError: boom" in line["exception"]
    assert line["offset"].startswith("<object object")


def test_an_unknown_log_format_stops_with_what_is_accepted() -> None:
    result = CliRunner().invoke(
        main, ["produce", "--events", "1"], env={"TALON_STREAM_LOG_FORMAT": "yaml"}
    )
    assert result.exit_code == 2
    assert "expected text or json" in result.output
