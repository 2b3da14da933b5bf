"""Replaying the dead-letter topic (``talon-stream dlq replay``).

A DLQ record, written by :mod:`workers.processor` with :func:`workers.envelopes.dlq_headers`, is
the original record — key, value, headers — plus ``talon-stream.*`` headers saying why it failed
and where it came from. :func:`replay_dlq` reads the DLQ topic, keeps the records a
:class:`ReplayFilter` selects, and publishes each again to its source topic as it was: same key,
value and original headers, the ``talon-stream.*`` headers replaced by one,
``talon-stream.replay.of`` = ``dlqtopic/partition/offset``, so a replayed record can be traced.

The public API is what this package exports; its modules, each documenting its part:

* :mod:`~workers.dlq.model` — the records, filter, options, summary, observer hooks and errors
  (the error tree and the time window are described there);
* :mod:`~workers.dlq.reader` — reading the DLQ up to the end offsets taken as the run starts;
* :mod:`~workers.dlq.publisher` — publishing in order per key, and what a refusal stops;
* :mod:`~workers.dlq.replay` — :func:`replay_dlq`, which ties them together;
* :mod:`~workers.dlq.console` — what the command shows on the terminal.
"""

from workers.dlq.console import ConsoleObserver
from workers.dlq.model import (
    DeadLetter,
    DlqTopicNotFoundError,
    Replay,
    ReplayDeliveryError,
    ReplayFilter,
    ReplayObserver,
    ReplayOptions,
    ReplaySummary,
    parse_time,
)
from workers.dlq.reader import SEEK_MARGIN
from workers.dlq.replay import LIBRDKAFKA_LOG, replay_dlq

# The header is defined once, in workers.envelopes; this package has always exported it under
# this name.
from workers.envelopes import REPLAY_HEADER as REPLAY_OF_HEADER

__all__ = [
    "LIBRDKAFKA_LOG",
    "REPLAY_OF_HEADER",
    "SEEK_MARGIN",
    "ConsoleObserver",
    "DeadLetter",
    "DlqTopicNotFoundError",
    "Replay",
    "ReplayDeliveryError",
    "ReplayFilter",
    "ReplayObserver",
    "ReplayOptions",
    "ReplaySummary",
    "parse_time",
    "replay_dlq",
]
