"""One evaluated event, what happened live against what the campaigns would have done:
:class:`EventDiff`, and the diff record written for it. Pure, no I/O.

Both sides are restricted to the effects whose ``campaignId`` is one of the evaluated
campaigns: the live side is the effects envelope the worker published for the same source
record (``source.topic/partition/offset``), the candidate side the dry call's answer.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from talon_stream.core._calls import TalonCall
from talon_stream.core._events import Event
from talon_stream.core._records import InputRecord

__all__ = ["DIFF_VERSION", "EventDiff", "LiveOutcome", "effect_signature", "restrict"]

#: ``diffVersion`` of the diff records.
DIFF_VERSION = 1

Effect = dict[str, Any]


def restrict(effects: Iterable[Any], campaigns: Collection[int]) -> list[Effect]:
    """The effects of ``campaigns``, in their order."""
    return [e for e in effects if isinstance(e, dict) and e.get("campaignId") in campaigns]


def effect_signature(effects: Iterable[Effect]) -> list[tuple[Any, ...]]:
    """What makes two effect lists the same for the diff: each effect's campaign, rule, type,
    name and value, in a stable order (ids Talon.One makes up per call, such as transaction
    UUIDs, are left out)."""
    out = []
    for effect in effects:
        props = effect.get("props")
        props = props if isinstance(props, dict) else {}
        out.append(
            (
                effect.get("campaignId"),
                effect.get("ruleIndex"),
                str(effect.get("effectType")),
                repr(props.get("name")),
                repr(props.get("value")),
            )
        )
    return sorted(out)


@dataclass(frozen=True, slots=True)
class LiveOutcome:
    """The live effects envelope of a record: Talon.One's status (0: not sent) and its effects
    of the evaluated campaigns."""

    status: int
    effects: list[Effect]


@dataclass(frozen=True, slots=True)
class EventDiff:
    """One evaluated event: the dry call made, its answer (``status``; ``error`` when Talon.One
    refused it), the candidate effects and the live outcome (``None``: no live envelope)."""

    record: InputRecord
    event: Event
    call: TalonCall
    request_id: str
    status: int
    error: str | None
    candidate: list[Effect]
    live: LiveOutcome | None

    @property
    def closing(self) -> bool:
        """Whether the event closes its session (its discounts and points are the order's)."""
        return self.event.type == "order.placed"

    @property
    def changed(self) -> bool:
        """Whether the candidate effects differ from the live ones."""
        live = self.live.effects if self.live is not None else []
        return effect_signature(live) != effect_signature(self.candidate)

    def to_record(self, run: Mapping[str, Any]) -> dict[str, Any]:
        """The diff record (JSON-shaped) of this event; ``run`` says which run made it."""
        record, event = self.record, self.event
        timestamp = (
            None
            if record.timestamp_ms is None
            else datetime.fromtimestamp(record.timestamp_ms / 1000, tz=UTC).isoformat(
                timespec="milliseconds"
            )
        )
        live = self.live
        return {
            "diffVersion": DIFF_VERSION,
            "whatIf": dict(run),
            "source": {
                "eventId": event.event_id,
                "type": event.type,
                "occurredAt": event.occurred_at.isoformat(),
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "timestamp": timestamp,
            },
            "profileId": self.call.profile_id,
            "sessionId": self.call.session_id,
            "operation": self.call.operation.value,
            "requestId": self.request_id,
            "status": self.status,
            "error": self.error,
            "live": {
                "found": live is not None,
                "status": None if live is None else live.status,
                "effects": [] if live is None else live.effects,
            },
            "candidate": {"effects": self.candidate},
            "changed": self.changed,
        }
