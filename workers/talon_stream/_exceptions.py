"""The exception tree of talon-stream.

Every error the worker raises derives from :class:`TalonStreamError`::

    TalonStreamError
    ├── ConfigurationError          the worker cannot start: what to fix is in the message
    │   └── InvalidSettingsError    settings that fail validation; one problem per setting
    ├── BrokerError                 the embedded or external Kafka broker misbehaved
    ├── RecordError                 one input record cannot become a Talon.One call  → DLQ
    │   ├── DecodeError             not JSON / not a valid event envelope
    │   ├── MappingError            a shop's own document the mapping file cannot turn into
    │   │                           an event (no rule matches, a required field is missing)
    │   ├── TranslationError        a valid event that cannot be mapped to a call
    │   └── ErasedCustomerError     a record of a customer whose personal data was erased
    └── TalonError                  a Talon.One call failed; carries the call
        ├── TalonTransportError     no HTTP answer (connect, timeout, protocol)    → retry
        └── TalonStatusError        an HTTP answer with a non-2xx status; carries status + body
            ├── TalonRetryableError 409, 429, 500, 502, 503, 504                   → retry
            ├── TalonPermanentError 400, 404, 422 and other 4xx                    → DLQ
            │   └── TalonDuplicateError 409: the advanced event exists already (a replay)
            └── TalonFatalError     401, 403: the key or the deployment is wrong   → stop

Business code catches these, never ``httpx`` or ``confluent_kafka`` errors: the adapters translate
third-party errors once, at the boundary, with ``raise ... from exc``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from talon_stream.core._calls import TalonCall

__all__ = [
    "BrokerError",
    "ConfigurationError",
    "DecodeError",
    "ErasedCustomerError",
    "InvalidSettingsError",
    "MappingError",
    "ParkedError",
    "RecordError",
    "RecordTooLargeError",
    "TalonDuplicateError",
    "TalonError",
    "TalonFatalError",
    "TalonPermanentError",
    "TalonRetryableError",
    "TalonStatusError",
    "TalonStreamError",
    "TalonTransportError",
    "TranslationError",
]

#: How much of a response body an error keeps (and shows): enough to read, never a flood.
BODY_PREVIEW_CHARS = 2000


class TalonStreamError(Exception):
    """Root of every error talon-stream raises."""


class ConfigurationError(TalonStreamError):
    """The configuration is unusable; the message says what to change."""


class InvalidSettingsError(ConfigurationError):
    """Settings that fail validation. ``problems`` holds one ``(where, what)`` pair per setting:
    where the value came from as the user would fix it (``TALON_STREAM_GROUP_ID``,
    ``--set group_id``, ``group_id in talon-stream.toml``) and what is expected. No value is
    ever quoted: one may be a secret."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        lines = "\n".join(f"  {where}: {what}" for where, what in problems)
        super().__init__(f"invalid configuration:\n{lines}")
        self.problems = tuple(problems)


class BrokerError(TalonStreamError):
    """The Kafka broker could not be started, reached or set up."""


class RecordError(TalonStreamError):
    """An input record that can never succeed as it is. It goes to the DLQ with this reason."""


class DecodeError(RecordError):
    """The record value is not a valid event envelope (bad JSON, wrong fields, unknown type)."""


class MappingError(RecordError):
    """A record of a mapped topic (``TALON_STREAM_MAPPING_FILE``,
    :mod:`talon_stream.formats.mapping._mappings`) that
    the mapping cannot turn into an event: no rule recognises the document, an expression of a
    required field gave nothing or failed, a conversion cannot read a value, or the event built
    is invalid. ``mapping``, ``rule``, ``field`` and ``expression`` say where (``None`` where it
    does not apply); the message names them all."""

    def __init__(
        self,
        problem: str,
        *,
        mapping: str,
        rule: str | None = None,
        field: str | None = None,
        expression: str | None = None,
    ) -> None:
        super().__init__(problem)
        self.mapping = mapping
        self.rule = rule
        self.field = field
        self.expression = expression

    def __str__(self) -> str:
        where = f'mapping "{self.mapping}"'
        if self.rule is not None:
            where += f', rule "{self.rule}"'
        if self.field is not None:
            return f"{where} → {self.field}: {self.args[0]}"
        return f"{where}: {self.args[0]}"


class TranslationError(RecordError):
    """The event is valid but cannot be turned into a Talon.One call."""


class ErasedCustomerError(RecordError):
    """A record of a customer whose personal data an earlier ``customer.erased`` event
    deleted: it is not sent, so that Talon.One does not create the profile again. The message
    names the customer by digest only."""


class ParkedError(RecordError):
    """Under the ``park`` DLQ policy: an earlier record of the same customer is in the DLQ, so
    this one follows it there, to be replayed after it in order."""


class RecordTooLargeError(RecordError):
    """The record value is larger than ``max_record_bytes``: no event is that large."""


class TalonError(TalonStreamError):
    """A Talon.One call failed. ``call`` is the call that was attempted."""

    def __init__(self, message: str, *, call: TalonCall) -> None:
        super().__init__(message)
        self.call = call

    def __str__(self) -> str:
        return f"{self.args[0]} ({self.call.describe()})"


class TalonTransportError(TalonError):
    """No HTTP answer: the connection failed, timed out or broke."""


class TalonStatusError(TalonError):
    """Talon.One answered with a non-2xx status."""

    def __init__(
        self,
        message: str,
        *,
        call: TalonCall,
        status: int,
        body: str,
        retry_after: float | None = None,
        problems: tuple[tuple[str | None, str], ...] = (),
        unknown_attributes: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message, call=call)
        self.status = status
        self.body = body[:BODY_PREVIEW_CHARS]
        #: Seconds the server asked us to wait (``Retry-After``), if it said.
        self.retry_after = retry_after
        #: Talon.One's ``errors``, whole (the body is cut short): each one's JSON pointer into
        #: the request (``None`` if it has none) and what it says.
        self.problems = problems
        #: The pointers of the errors titled ``Unknown`` that name a custom attribute the
        #: Application does not declare (``/customerSession/attributes/shoeSize``).
        self.unknown_attributes = unknown_attributes

    def __str__(self) -> str:
        return f"HTTP {self.status} from {self.call.describe()}: {self.args[0]}"


class TalonRetryableError(TalonStatusError):
    """A status that may succeed later: 409 (per-ID queue full), 429, 500, 502, 503, 504."""


class TalonPermanentError(TalonStatusError):
    """A status that will not change on retry (400, 404, 422, …): the record goes to the DLQ."""


class TalonDuplicateError(TalonPermanentError):
    """409 to a track advanced event: an event with its ``integrationId`` exists already. Not
    worth retrying; the worker reads the stored event instead (a replay after a crash)."""


class TalonFatalError(TalonStatusError):
    """401/403: the API key or the deployment URL is wrong. The worker stops consuming."""
