"""What-if: what would campaigns have done over a past window of the input topics
(``talon-stream what-if``, docs/what-if.md).

:func:`run_what_if` reads the input topics' records of ``[since, until)`` by assignment (no
consumer group, nothing committed), evaluates each session update, profile update and custom
event again with ``dry=true`` and ``evaluableCampaignIds`` — per customer in order, at a bounded
rate — and compares the effects of those campaigns with the ones the workers published live.
Nothing in Talon.One changes: a call without ``dry=true`` is refused before it is sent.

The public API is what this package exports; its modules, each documenting its part:

* :mod:`~talon_stream.whatif._model` — the options and the errors;
* :mod:`~talon_stream.whatif._window` — which offsets a window is, and reading them;
* :mod:`~talon_stream.whatif._live` — the live effects envelopes of the window's records;
* :mod:`~talon_stream.whatif._sessions` — sessions accumulated client-side, the dry call of an
  event;
* :mod:`~talon_stream.whatif._evaluate` — the dry-only guard, the calls in per-customer order;
* :mod:`~talon_stream.whatif._diff` — one event live against candidate, its diff record;
* :mod:`~talon_stream.whatif._report` — per-campaign totals, the table and the CSV files;
* :mod:`~talon_stream.whatif._publish` — the diff records on the diff topic;
* :mod:`~talon_stream.whatif._run` — :func:`run_what_if`, which ties them together;
* :mod:`~talon_stream.whatif._console` — what the command shows on the terminal.
"""

from talon_stream.whatif._console import ConsoleObserver
from talon_stream.whatif._diff import DIFF_VERSION, EventDiff, LiveOutcome, restrict
from talon_stream.whatif._evaluate import DryJob, DryOnlySender, DryRunEvaluator
from talon_stream.whatif._live import LIVE_MARGIN, LiveEffects
from talon_stream.whatif._model import (
    DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_RATE,
    NonDryCallError,
    TopicNotFoundError,
    WhatIfHaltedError,
    WhatIfOptions,
    parse_campaigns,
    parse_duration,
)
from talon_stream.whatif._report import MEASURES, CampaignTotals, EventsCsv, WhatIfReport, tally
from talon_stream.whatif._run import LIBRDKAFKA_LOG, WhatIfObserver, run_what_if
from talon_stream.whatif._sessions import SessionBook, Step, with_campaigns
from talon_stream.whatif._window import PartitionRange, RangeScan

__all__ = [
    "DEFAULT_MAX_IN_FLIGHT",
    "DEFAULT_RATE",
    "DIFF_VERSION",
    "LIBRDKAFKA_LOG",
    "LIVE_MARGIN",
    "MEASURES",
    "CampaignTotals",
    "ConsoleObserver",
    "DryJob",
    "DryOnlySender",
    "DryRunEvaluator",
    "EventDiff",
    "EventsCsv",
    "LiveEffects",
    "LiveOutcome",
    "NonDryCallError",
    "PartitionRange",
    "RangeScan",
    "SessionBook",
    "Step",
    "TopicNotFoundError",
    "WhatIfHaltedError",
    "WhatIfObserver",
    "WhatIfOptions",
    "WhatIfReport",
    "parse_campaigns",
    "parse_duration",
    "restrict",
    "run_what_if",
    "tally",
    "with_campaigns",
]
