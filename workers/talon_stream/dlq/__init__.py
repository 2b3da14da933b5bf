"""The dead-letter topic: writing to it (:class:`DeadLetterWriter`) and replaying it
(``talon-stream dlq replay``).

A DLQ record, written by :class:`DeadLetterWriter` with :func:`talon_stream.core.dlq_headers`, is
the original record — key, value, headers — plus ``talon-stream.*`` headers saying why it failed
and where it came from. :func:`replay_dlq` reads the DLQ topic, keeps the records a
:class:`ReplayFilter` selects, and publishes each again to its source topic as it was: same key,
value and original headers, the ``talon-stream.*`` headers replaced by one,
``talon-stream.replay.of`` = ``dlqtopic/partition/offset``, so a replayed record can be traced.

The public API is what this package exports; its modules, each documenting its part:

* :mod:`~talon_stream.dlq._writer` — writing a record that failed, and the ``park`` policy;
* :mod:`~talon_stream.dlq._model` — the records, filter, options, summary, observer hooks and errors
  (the error tree and the time window are described there);
* :mod:`~talon_stream.dlq._reader` — reading the DLQ up to the end offsets taken as the run starts;
* :mod:`~talon_stream.dlq._publisher` — publishing in order per key, and what a refusal stops;
* :mod:`~talon_stream.dlq._replay` — :func:`replay_dlq`, which ties them together;
* :mod:`~talon_stream.dlq._console` — what the command shows on the terminal.
"""

from talon_stream.dlq._console import ConsoleObserver
from talon_stream.dlq._model import (
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
from talon_stream.dlq._reader import SEEK_MARGIN
from talon_stream.dlq._replay import LIBRDKAFKA_LOG, replay_dlq
from talon_stream.dlq._writer import DeadLetterWriter

__all__ = [
    "LIBRDKAFKA_LOG",
    "SEEK_MARGIN",
    "ConsoleObserver",
    "DeadLetter",
    "DeadLetterWriter",
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
