"""The live side: the effects envelopes the workers published for the window's records
(:class:`LiveEffects`), read from the effects topic before any dry call is made.

An envelope names its source record (``source.topic/partition/offset``, docs/effects.md); only
those of records in the window are kept, each with its status and its effects of the evaluated
campaigns. The topic is read from :data:`LIVE_MARGIN` before ``since`` — an envelope is
published after its record, and a producer's clock may be behind the broker's — up to its end
offsets as the run starts. A record published twice (a replay after a crash) keeps its last
envelope. JSON envelopes and Avro ones (``TALON_STREAM_TOPIC_FORMATS``) are both read.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson

from talon_stream._exceptions import DecodeError
from talon_stream.core._records import InputRecord
from talon_stream.whatif._diff import LiveOutcome, restrict
from talon_stream.whatif._window import PartitionRange, RangeReader, RangeScan, check_stalled

if TYPE_CHECKING:  # the Schema Registry client is imported only for an Avro effects topic
    from talon_stream.formats.avro.formats import EnvelopeReader

__all__ = ["LIVE_MARGIN", "LiveEffects", "read_live"]

log = logging.getLogger(__name__)

#: How long before ``since`` the effects topic is read from.
LIVE_MARGIN = timedelta(minutes=5)

_FETCH_BATCH = 1000
_POLL_S = 0.2


class LiveEffects:
    """The live outcome of each record of the window, by its coordinates."""

    def __init__(self, campaigns: Collection[int], ranges: Iterable[PartitionRange]) -> None:
        self._campaigns = frozenset(campaigns)
        self._ranges = {r.key: r for r in ranges}
        self._outcomes: dict[tuple[str, int, int], LiveOutcome] = {}
        #: Records of the effects topic read, and those that were not envelopes.
        self.read = 0
        self.unreadable = 0

    def __len__(self) -> int:
        return len(self._outcomes)

    def add(self, envelope: Any) -> bool:
        """Keep ``envelope`` if its source record is in the window; whether it was kept."""
        self.read += 1
        source = envelope.get("source") if isinstance(envelope, dict) else None
        if not isinstance(source, dict):
            self.unreadable += 1
            return False
        topic, partition, offset = (
            source.get("topic"),
            source.get("partition"),
            source.get("offset"),
        )
        if not (isinstance(topic, str) and isinstance(partition, int) and isinstance(offset, int)):
            self.unreadable += 1
            return False
        window = self._ranges.get((topic, partition))
        if window is None or not window.in_window(offset):
            return False
        if window.stop is not None and offset >= window.stop:
            return False
        status = envelope.get("status")
        self._outcomes[(topic, partition, offset)] = LiveOutcome(
            status if isinstance(status, int) else 0,
            restrict(envelope.get("effects") or (), self._campaigns),
        )
        return True

    def get(self, record: InputRecord) -> LiveOutcome | None:
        return self._outcomes.get((record.topic, record.partition, record.offset))


async def read_live(
    reader: RangeReader,
    topic: str,
    partitions: int,
    since: datetime,
    live: LiveEffects,
    *,
    envelopes: EnvelopeReader | None,
    timeout_s: float,
    progress: Callable[[int, int | None], None] = lambda _read, _total: None,
) -> None:
    """Read ``topic`` (the effects topic) into ``live``; ``envelopes`` reads Avro envelopes
    (``None``: JSON).

    Raises:
        BrokerError: the broker could not be reached, or stopped answering, for ``timeout_s``.
    """
    starts = await reader.call(reader.offsets_at, topic, partitions, since - LIVE_MARGIN, timeout_s)
    ranges = [PartitionRange(topic, p, start, start, None) for p, start in starts.items()]
    scan = RangeScan(ranges)
    await reader.call(reader.assign, ranges)
    waited = 0.0
    while not scan.finished:
        fetched = await reader.call(reader.fetch, _FETCH_BATCH, _POLL_S)
        if fetched.empty:
            waited += _POLL_S
            check_stalled(waited, timeout_s, topic, scan)
            continue
        waited = 0.0
        records = [record for record, _ in scan.take(fetched)]
        if envelopes is not None:
            await envelopes.prefetch(records)
        for record in records:
            live.add(_envelope(record, envelopes))
        await reader.call(reader.pause, scan.newly_done())
        progress(*scan.progress())
    if live.unreadable:
        log.warning("%d records of %s were not effects envelopes", live.unreadable, topic)


def _envelope(record: InputRecord, envelopes: EnvelopeReader | None) -> Any:
    try:
        if envelopes is not None:
            return envelopes.read(record)
        return orjson.loads(record.value or b"")
    except (DecodeError, orjson.JSONDecodeError):
        return None
