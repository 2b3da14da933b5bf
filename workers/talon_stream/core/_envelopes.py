"""What the worker writes for a record that became a call: the effects envelope
(``docs/effects.md``).

A pure function of the input record and the answer, so a replayed record produces the same
``envelopeId`` and downstream consumers can drop repeats.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Sequence
from typing import Any

from talon_stream.core._attributes import dropped_names
from talon_stream.core._calls import TalonCall, TalonResponse
from talon_stream.core._events import Event
from talon_stream.core._records import InputRecord

__all__ = [
    "ENVELOPE_VERSION",
    "coalesced_key",
    "effects_envelope",
    "envelope_id",
    "iso_ms",
    "superseded_envelope",
]

ENVELOPE_VERSION = 1
_NAMESPACE = uuid.UUID("0b6f5c1e-7d3a-4a55-9c8e-3f1f0e2a6d41")
_NAMESPACE_BYTES = _NAMESPACE.bytes
# Session fields copied into the envelope when Talon.One returned the session.
_SESSION_FIELDS = (
    "integrationId",
    "profileId",
    "state",
    "total",
    "cartItemTotal",
    "additionalCostTotal",
    "updateCount",
    "couponCodes",
    "referralCode",
    "updated",
)


def envelope_id(topic: str, partition: int, offset: int) -> str:
    """A UUID derived from the source record's coordinates: the same record, the same id.

    Equal to ``str(uuid.uuid5(namespace, "topic/partition/offset"))``, computed without building
    UUID objects (this runs for every record)."""
    digest = hashlib.sha1(  # noqa: S324 - RFC 4122 name-based UUIDs are defined on SHA-1
        _NAMESPACE_BYTES + f"{topic}/{partition}/{offset}".encode()
    ).digest()
    raw = bytearray(digest[:16])
    raw[6] = (raw[6] & 0x0F) | 0x50  # version 5
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    hexed = raw.hex()
    return f"{hexed[:8]}-{hexed[8:12]}-{hexed[12:16]}-{hexed[16:20]}-{hexed[20:]}"


def coalesced_key(records: Sequence[InputRecord]) -> str:
    """The Idempotency-Key of one call standing for ``records`` (coalesced cart updates): a UUID
    derived from all their coordinates — the same records, the same key on a replay — and never
    equal to the key of one of them alone (which Talon.One would refuse for another body)."""
    name = "coalesced:" + ";".join(f"{r.topic}/{r.partition}/{r.offset}" for r in records)
    return str(uuid.uuid5(_NAMESPACE, name))


class _IsoSeconds:
    """``YYYY-MM-DDTHH:MM:SS`` of a Unix second, remembered for the last second asked: every
    envelope carries two timestamps, mostly of the same few seconds."""

    __slots__ = ("_second", "_text")

    def __init__(self) -> None:
        self._second = -1
        self._text = ""

    def __call__(self, second: int) -> str:
        if second != self._second:
            # gmtime and %-formatting: a third of strftime's price (and cheaper than an f-string
            # of gmtime's fields), for records that come from many seconds (a backlog).
            fields = time.gmtime(second)[:6]
            self._text = "%04d-%02d-%02dT%02d:%02d:%02d" % fields  # noqa: UP031
            self._second = second
        return self._text


_SOURCE_SECONDS = _IsoSeconds()
_NOW_SECONDS = _IsoSeconds()


def iso_ms(timestamp_ms: int | None, seconds: _IsoSeconds = _SOURCE_SECONDS) -> str | None:
    """RFC 3339 in UTC with milliseconds, as ``datetime.isoformat(timespec="milliseconds")``
    writes it: ``2026-11-22T10:00:00.123+00:00``."""
    if timestamp_ms is None:
        return None
    second, millis = divmod(timestamp_ms, 1000)
    return f"{seconds(second)}.{millis:03d}+00:00"


def effects_envelope(
    record: InputRecord,
    event: Event,
    call: TalonCall,
    response: TalonResponse,
    *,
    processing_ms: float,
    envelope_key: str | None = None,
) -> dict[str, Any]:
    """The envelope published (as JSON) for one processed event; ``droppedAttributes`` when
    attributes Talon.One does not know were left out of the call."""
    body = response.body
    session = body.get("customerSession")
    envelope: dict[str, Any] = {
        "envelopeId": envelope_key or envelope_id(record.topic, record.partition, record.offset),
        "envelopeVersion": ENVELOPE_VERSION,
        "source": {
            "eventId": event.event_id,
            "type": event.type,
            "occurredAt": event.occurred_at.isoformat(),
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "timestamp": iso_ms(record.timestamp_ms),
        },
        "operation": call.operation.value,
        "status": response.status,
        "profileId": call.profile_id,
        "sessionId": call.session_id,
        "effects": response.effects,
        "createdCoupons": body.get("createdCoupons") or [],
        "createdReferrals": body.get("createdReferrals") or [],
        "session": (
            {name: session[name] for name in _SESSION_FIELDS if name in session}
            if isinstance(session, dict)
            else None
        ),
        "processingMs": round(processing_ms, 3),
        "processedAt": iso_ms(time.time_ns() // 1_000_000, _NOW_SECONDS),
    }
    if response.dropped:
        envelope["droppedAttributes"] = dropped_names(call.operation, response.dropped)
    return envelope


def superseded_envelope(
    record: InputRecord,
    event: Event,
    call: TalonCall,
    superseded: dict[str, Any],
    *,
    processing_ms: float,
    envelope_key: str | None = None,
) -> dict[str, Any]:
    """The envelope published for a record that was not sent because a newer event of its
    session was already applied (``superseded``: that event's ``eventId``, ``type``,
    ``occurredAt``, ``envelopeId``, the session's ``sessionState`` and the ``reason``): no
    call, so ``status`` 0 and no effects."""
    envelope = effects_envelope(
        record,
        event,
        call,
        TalonResponse(status=0, body={}, elapsed_s=0.0),
        processing_ms=processing_ms,
        envelope_key=envelope_key,
    )
    envelope["superseded"] = superseded
    return envelope
