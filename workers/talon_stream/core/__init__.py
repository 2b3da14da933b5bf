"""The pure core: what a record is, the event it carries, the Talon.One call it stands for, and
what the worker writes back. No I/O, no Kafka, HTTP or configuration imports.

* records — :class:`InputRecord` (consumed) and :data:`OutputRecord` (to produce);
* events — the canonical event envelope, one pydantic model per type, and its JSON decoding;
* calls — :class:`TalonCall` (what translation produces) and :class:`TalonResponse`;
* translation — :func:`translate`, event → call;
* envelopes — the effects envelope and its deterministic id; the DLQ headers;
* routing — which effects go to which downstream topics.
"""

from talon_stream.core._calls import Operation, TalonCall, TalonResponse
from talon_stream.core._dead_letters import (
    DLQ_HEADER_PREFIX,
    REPLAY_HEADER,
    DlqFailure,
    dlq_headers,
)
from talon_stream.core._envelopes import (
    ENVELOPE_VERSION,
    effects_envelope,
    envelope_id,
    superseded_envelope,
)
from talon_stream.core._events import (
    EVENT_MODELS,
    EVENT_TYPES,
    CartUpdated,
    CustomerEvent,
    CustomerUpdated,
    Event,
    OrderCancelled,
    OrderItemsReturned,
    OrderPlaced,
    OrderReopened,
    decode_event,
    validate_event,
)
from talon_stream.core._records import (
    Headers,
    InputRecord,
    OutputRecord,
    PartitionKey,
    RecordSink,
)
from talon_stream.core._routing import DEFAULT_EFFECT_ROUTES, EffectRouter
from talon_stream.core._translate import (
    ResponseContent,
    TranslationOptions,
    coalesce_session_updates,
    translate,
)

__all__ = [
    "DEFAULT_EFFECT_ROUTES",
    "DLQ_HEADER_PREFIX",
    "ENVELOPE_VERSION",
    "EVENT_MODELS",
    "EVENT_TYPES",
    "REPLAY_HEADER",
    "CartUpdated",
    "CustomerEvent",
    "CustomerUpdated",
    "DlqFailure",
    "EffectRouter",
    "Event",
    "Headers",
    "InputRecord",
    "Operation",
    "OrderCancelled",
    "OrderItemsReturned",
    "OrderPlaced",
    "OrderReopened",
    "OutputRecord",
    "PartitionKey",
    "RecordSink",
    "ResponseContent",
    "TalonCall",
    "TalonResponse",
    "TranslationOptions",
    "coalesce_session_updates",
    "decode_event",
    "dlq_headers",
    "effects_envelope",
    "envelope_id",
    "superseded_envelope",
    "translate",
    "validate_event",
]
