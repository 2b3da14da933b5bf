"""What a what-if run is about: its options (:class:`WhatIfOptions`), the parsing of the
command's values, and the errors. No I/O here.

Errors (all :class:`~talon_stream.TalonStreamError`)::

    BrokerError
    └── TopicNotFoundError      a topic the run reads or writes does not exist
    TalonError
    └── NonDryCallError         a call without dry=true reached the sender: it was not sent
    WhatIfHaltedError           Talon.One refused the API key, or could not be reached
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from talon_stream._exceptions import BrokerError, TalonError, TalonStreamError
from talon_stream.core._calls import TalonCall

__all__ = [
    "DEFAULT_MAX_IN_FLIGHT",
    "DEFAULT_RATE",
    "NonDryCallError",
    "TopicNotFoundError",
    "WhatIfHaltedError",
    "WhatIfOptions",
    "parse_campaigns",
    "parse_duration",
]

#: Calls per second by default: a modest share of Talon.One's rate limit, leaving the live
#: workers theirs.
DEFAULT_RATE = 20.0
DEFAULT_MAX_IN_FLIGHT = 16


class TopicNotFoundError(BrokerError):
    """A topic the run reads or writes does not exist; ``setting`` names what to fix."""

    def __init__(self, topic: str, setting: str, bootstrap_servers: str) -> None:
        super().__init__(
            f"the topic {topic!r} does not exist on {bootstrap_servers} (check {setting})"
        )
        self.topic = topic
        self.setting = setting


class NonDryCallError(TalonError):
    """A call without ``dry=true`` reached the what-if's sender. It was not sent: a what-if
    never changes anything in Talon.One."""

    def __init__(self, call: TalonCall) -> None:
        super().__init__("refused to send a call without dry=true in a what-if run", call=call)


class WhatIfHaltedError(TalonStreamError):
    """Talon.One refused the API key or could not be reached; the run stopped. ``reason`` says
    what to fix."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"the what-if stopped: {reason}")
        self.reason = reason


@dataclass(frozen=True, slots=True)
class WhatIfOptions:
    """The window ``[since, until)``, the campaigns to evaluate, and how fast.

    ``lookback``: records this long before ``since`` rebuild the sessions' state without being
    evaluated (carts begun before the window). ``diff_topic``: where the per-event diff records
    go (``None``: nowhere).

    Raises:
        ValueError: a value out of range; the message names the option.
    """

    since: datetime
    until: datetime
    campaigns: tuple[int, ...]
    rate_per_s: float = DEFAULT_RATE
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    lookback: timedelta = timedelta(0)
    diff_topic: str | None = None
    timeout_s: float = 10.0
    #: Sessions whose state is kept at once; beyond, the least recently used is forgotten.
    max_sessions: int = 200_000
    #: With several Applications: the one evaluated (its records only, with its key).
    application: str = "default"

    def __post_init__(self) -> None:
        for name, moment in (("--since", self.since), ("--until", self.until)):
            if moment.tzinfo is None:
                raise ValueError(f"{name} must carry a time zone (or be read as UTC)")
        if self.since >= self.until:
            raise ValueError("--since must be before --until")
        if not self.campaigns or any(campaign < 1 for campaign in self.campaigns):
            raise ValueError("--campaigns: name at least one campaign id (positive integers)")
        object.__setattr__(self, "campaigns", tuple(sorted(set(self.campaigns))))
        if self.rate_per_s <= 0:
            raise ValueError("--rate must be positive")
        if self.max_in_flight < 1:
            raise ValueError("--max-in-flight must be at least 1")
        if self.lookback < timedelta(0):
            raise ValueError("--lookback must not be negative")
        if self.max_sessions < 1:
            raise ValueError("max_sessions must be at least 1")


def parse_campaigns(text: str) -> tuple[int, ...]:
    """``"12,15"`` → ``(12, 15)``.

    Raises:
        ValueError: not a comma-separated list of positive integers.
    """
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not parts or not all(part.isdigit() and int(part) > 0 for part in parts):
        raise ValueError(f"{text!r} is not a comma-separated list of campaign ids, e.g. 12,15")
    return tuple(sorted({int(part) for part in parts}))


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd]?)")
_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> timedelta:
    """``"90s"``, ``"30m"``, ``"2h"``, ``"1d"`` (a bare number is seconds).

    Raises:
        ValueError: not a duration.
    """
    found = _DURATION.fullmatch(text.strip())
    if found is None:
        raise ValueError(f"{text!r} is not a duration such as 90s, 30m, 2h or 1d")
    return timedelta(seconds=float(found.group(1)) * _UNITS[found.group(2)])
