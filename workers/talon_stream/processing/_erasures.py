"""Customers whose personal data was erased (``customer.erased``), remembered across restarts.

Once Talon.One has deleted a customer's data, a later record of that customer must not be sent:
a session update or a tracked event would create the profile again. The ledger says which
customers were erased; the worker refuses their later records (DLQ,
:class:`~talon_stream.ErasedCustomerError`).

It never holds an integration ID: each customer is named by :func:`customer_digest`. Every
erasure is also written to the erasures topic (compacted, keyed by the digest) before its
outcome is published, in the same transaction with exactly-once processing, so that whoever owns
the customer's partition next reads it back (:meth:`ErasureLedger.load`) before it runs a record.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from talon_stream.core._calls import customer_digest
from talon_stream.core._records import RecordSink

__all__ = ["Erasure", "ErasureLedger"]


@dataclass(frozen=True, slots=True)
class Erasure:
    """One erased customer: by digest, with the erasure event's id and envelope and when it was
    applied."""

    digest: str
    event_id: str
    envelope_id: str
    erased_at: str

    def describe(self) -> str:
        return (
            f"customer ~{self.digest[:12]} was erased by event {self.event_id!r} (envelope "
            f"{self.envelope_id}, {self.erased_at})"
        )


class ErasureLedger:
    """The erased customers one worker knows of; ``topic`` is where erasures are written."""

    def __init__(self, sink: RecordSink | None, topic: str) -> None:
        self._sink = sink
        self.topic = topic
        self._erased: dict[str, Erasure] = {}

    def __len__(self) -> int:
        return len(self._erased)

    def find(self, integration_id: str) -> Erasure | None:
        """The erasure of this customer, if they were erased."""
        if not self._erased:  # the common case: no digest to compute
            return None
        return self._erased.get(customer_digest(integration_id))

    async def record(self, integration_id: str, *, event_id: str, envelope_id: str) -> Erasure:
        """Remember that Talon.One erased this customer: written to the erasures topic (and
        acknowledged) first, then known here.

        Raises:
            BrokerError: the erasure could not be written; it is not remembered either.
        """
        erasure = Erasure(
            customer_digest(integration_id),
            event_id,
            envelope_id,
            datetime.now(tz=UTC).isoformat(timespec="milliseconds"),
        )
        if self._sink is not None:
            value = orjson.dumps(
                {
                    "eventId": erasure.event_id,
                    "envelopeId": erasure.envelope_id,
                    "erasedAt": erasure.erased_at,
                }
            )
            await self._sink.send(self.topic, key=erasure.digest.encode(), value=value)
        self._erased[erasure.digest] = erasure
        return erasure

    def load(self, key: bytes | None, value: bytes | None) -> None:
        """Take one record of the erasures topic (written by :meth:`record`, here or by another
        worker); a record it cannot read is ignored."""
        if not key:
            return
        digest = key.decode(errors="replace")
        try:
            fields = orjson.loads(value or b"{}")
        except orjson.JSONDecodeError:
            fields = {}
        if not isinstance(fields, dict):
            fields = {}
        self._erased[digest] = Erasure(
            digest,
            str(fields.get("eventId", "")),
            str(fields.get("envelopeId", "")),
            str(fields.get("erasedAt", "")),
        )
