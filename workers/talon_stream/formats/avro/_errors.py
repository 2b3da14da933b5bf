"""The errors of Avro and the Schema Registry, in talon-stream's one tree
(:mod:`talon_stream._exceptions`)::

    TalonStreamError
    ├── ConfigurationError         Avro for a topic without a registry URL; an output schema the
    │                              registry refuses at start-up (incompatible, unknown subject)
    ├── RegistryError              the Schema Registry cannot be reached, or refused a request
    │                              (bad credentials): the worker stops, loudly (while decoding,
    │                              an unreachable registry is waited for instead)
    └── RecordError
        ├── DecodeError            not the Confluent wire format, a schema id the registry does
        │                          not know, bytes that are not Avro of that schema   → DLQ
        └── EncodeError            Talon.One's answer does not fit the effects envelope's
                                   schema                                             → DLQ

``confluent_kafka.schema_registry`` errors are translated here, once.
"""

from __future__ import annotations

from talon_stream._exceptions import RecordError, TalonStreamError

__all__ = ["EncodeError", "RegistryError"]


class RegistryError(TalonStreamError):
    """The Schema Registry at ``url`` cannot be reached, or refused a request. ``status`` is the
    HTTP status (``None``: no answer) and ``error_code`` the registry's own code."""

    def __init__(
        self,
        message: str,
        *,
        url: str,
        status: int | None = None,
        error_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.url = url
        self.status = status
        self.error_code = error_code

    def __str__(self) -> str:
        answer = "no answer" if self.status is None else f"HTTP {self.status}"
        return f"Schema Registry {self.url} ({answer}): {self.args[0]}"


class EncodeError(RecordError):
    """An output record that does not fit its Avro schema (``topic`` is where it was going)."""

    def __init__(self, message: str, *, topic: str) -> None:
        super().__init__(message)
        self.topic = topic

    def __str__(self) -> str:
        return f"cannot encode the record for {self.topic} with its Avro schema: {self.args[0]}"
