"""Times as Talon.One prints them: RFC 3339 in UTC with microseconds and ``Z``.

Every time in an answer (``created``, ``updated``, ``lastActivity``, loyalty ``startDate``...)
goes through :func:`format_time`, which is on the path of every request.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

__all__ = ["add_times", "format_time", "parse_stamp", "utc_now"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# The last whole second formatted: (seconds since the epoch, "YYYY-MM-DDTHH:MM:SS"). One tuple,
# replaced whole, so that threads formatting at the same time never see half of an update.
_last_second: tuple[int, str] = (-1, "")


def utc_now() -> datetime:
    return datetime.now(UTC)


def format_time(moment: datetime) -> str:
    """``2026-03-01T12:00:00.000000Z``; a naive ``moment`` is taken as local time.

    ``datetime.isoformat`` costs several microseconds on the request path; requests in the same
    second share the formatted date and time, and only the microseconds are formatted anew.
    """
    global _last_second  # a one-entry cache, see above
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    since_epoch = moment - _EPOCH
    second = since_epoch.days * 86_400 + since_epoch.seconds
    cached, prefix = _last_second
    if second != cached:
        prefix = moment.replace(microsecond=0, tzinfo=None).isoformat()
        _last_second = (second, prefix)
    return f"{prefix}.{moment.microsecond:06d}Z"


def parse_stamp(value: str) -> datetime:
    """A time the emulator printed (RFC 3339, ``Z``), back as an aware datetime."""
    return datetime.fromisoformat(value)


def add_times(body: dict[str, Any], **times: datetime | None) -> None:
    """Set each of ``times`` that is given in ``body``, formatted; ``None`` ones are left out
    (Talon.One omits unset optional dates)."""
    for key, moment in times.items():
        if moment is not None:
            body[key] = format_time(moment)
