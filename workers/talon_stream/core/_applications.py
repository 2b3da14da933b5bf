"""Which Talon.One Application a record is for. Pure logic, no I/O.

A shop with one Application per market or currency names the market in each record: in a header
(``header:x-market``) or in the event (``payload.attributes.market``, a path of the event's
camelCase field names and object keys). :class:`ApplicationRouter` reads it: a record that names
no Application goes to the default one; one that names an Application the worker was not given
is refused (DLQ), since sending it to another market would be wrong.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from pydantic import BaseModel

from talon_stream._exceptions import ConfigurationError, TranslationError
from talon_stream.core._events import Event
from talon_stream.core._records import InputRecord

__all__ = ["ApplicationRouter"]


class ApplicationRouter:
    """Reads a record's Application from ``field`` (``header:<name>`` or an event path);
    ``names``: the Applications there are, ``default`` among them."""

    def __init__(self, field: str, names: Collection[str], default: str) -> None:
        self.field = field
        self._names = frozenset(names)
        self.default = default
        self._header: bytes | None = None
        self._path: tuple[str, ...] = ()
        if field.startswith("header:"):
            header = field.removeprefix("header:").strip()
            if not header:
                raise ConfigurationError(
                    "TALON_STREAM_APPLICATION_FIELD header:<name> needs a header name"
                )
            self._header = header.lower().encode()
        else:
            self._path = tuple(part for part in field.split(".") if part)
            if not self._path:
                raise ConfigurationError(
                    f"TALON_STREAM_APPLICATION_FIELD {field!r} is not a path (e.g. payload.market)"
                )

    def route(self, record: InputRecord, event: Event) -> str:
        """The Application of ``record``.

        Raises:
            TranslationError: the record names an Application the worker does not have.
        """
        value = self._read(record, event)
        if value is None or value == "":
            return self.default
        if value not in self._names:
            known = ", ".join(sorted(self._names))
            raise TranslationError(
                f"{self.field} is {value!r}, which is not an Application of this worker "
                f"(TALON_STREAM_APPLICATIONS: {known})"
            )
        return value

    def _read(self, record: InputRecord, event: Event) -> str | None:
        if self._header is not None:
            for name, value in record.headers:
                if name.lower().encode() == self._header:
                    return value.decode(errors="replace")
            return None
        found: Any = event
        for part in self._path:
            found = _child(found, part)
            if found is None:
                return None
        return found if isinstance(found, str) else str(found)


def _child(value: Any, name: str) -> Any:
    """``value``'s field or key ``name`` (a model's field by its camelCase name or its own)."""
    if isinstance(value, BaseModel):
        fields = type(value).model_fields
        for field_name, info in fields.items():
            if name in (info.alias, field_name):
                return getattr(value, field_name)
        return None
    if isinstance(value, dict):
        return value.get(name)
    return None
