"""Logging set-up: readable text for people, one JSON object per line for log pipelines.

``TALON_STREAM_LOG_FORMAT=json`` (or ``--log-format json``) writes lines such as::

    {"time":"2026-11-22T10:00:00.123Z","level":"WARNING","logger":"talon_stream.processing._processor",
     "message":"record shop.carts[2]@7 to the DLQ: HTTP 400 ...","topic":"shop.carts",
     "partition":2,"offset":7,"envelopeId":"...","profileId":"c-1","sessionId":"s-1",
     "errorClass":"TalonPermanentError"}

The record fields come from the ``extra`` of the logging call (:func:`record_fields` builds
them), so every line about a record carries its coordinates and IDs. Secrets are never passed to
the logger: the API key lives in a ``SecretStr`` and no message formats it.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, Literal

import orjson

__all__ = ["JsonFormatter", "record_fields", "setup_logging"]

LogFormat = Literal["text", "json"]

#: The ``extra`` keys copied into JSON lines (and only those: LogRecord has many attributes).
FIELDS = (
    "topic",
    "partition",
    "offset",
    "envelopeId",
    "eventId",
    "profileId",
    "sessionId",
    "operation",
    "status",
    "errorClass",
    "attempt",
)


def record_fields(topic: str, partition: int, offset: int, **more: object) -> dict[str, object]:
    """The ``extra`` of a log call about one record (``None`` values left out)."""
    fields: dict[str, object] = {"topic": topic, "partition": partition, "offset": offset}
    fields.update((key, value) for key, value in more.items() if value is not None)
    return fields


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ms), level, logger, message, the record fields
    given as ``extra``, and the exception if any."""

    def format(self, record: logging.LogRecord) -> str:
        seconds = int(record.created)
        millis = int((record.created - seconds) * 1000)
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in FIELDS:
            value = record.__dict__.get(key)
            if value is not None:
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


def setup_logging(level: str, log_format: LogFormat = "text") -> None:
    """Log to stderr at ``level`` in ``log_format`` (replacing any handler set before)."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
