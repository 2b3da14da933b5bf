"""Query parameters of the list endpoints (loyalty, achievements), parsed or answered with 400.

Every problem is an :class:`~talon_one_emulator.errors.InvalidDataError` whose detail names the
parameter
(``source.parameter``), as for the session endpoints' flags.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime

from multidict import MultiMapping

from talon_one_emulator.errors import ApiErrorDetail, InvalidDataError

__all__ = [
    "MAX_PAGE_SIZE",
    "Page",
    "Query",
    "parse_enum",
    "parse_int",
    "parse_list",
    "parse_moment",
    "parse_page",
]

MAX_PAGE_SIZE = 1000


Query = MultiMapping[str]
"""A request's query string (aiohttp's ``request.query``)."""


def _invalid(name: str, title: str, details: str) -> InvalidDataError:
    return InvalidDataError((ApiErrorDetail(title, details, parameter=name),))


@dataclass(frozen=True, slots=True)
class Page:
    """``pageSize`` and ``skip`` of a list endpoint."""

    size: int
    skip: int = 0

    def has_more(self, total: int) -> bool:
        return total > self.skip + self.size


def parse_int(
    query: Query, name: str, *, minimum: int | None = None, maximum: int | None = None
) -> int | None:
    """An integer parameter (``None`` when absent) within the bounds."""
    raw = query.get(name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise _invalid(name, "Invalid type", f"{name} must be an integer, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise _invalid(name, "minimum", f"{name} must be at least {minimum}")
    if maximum is not None and value > maximum:
        raise _invalid(name, "maximum", f"{name} must be at most {maximum}")
    return value


def parse_page(query: Query, default_size: int) -> Page:
    """``pageSize`` (1..1000) and ``skip`` (≥ 0)."""
    size = parse_int(query, "pageSize", minimum=1, maximum=MAX_PAGE_SIZE)
    skip = parse_int(query, "skip", minimum=0)
    return Page(size if size is not None else default_size, skip or 0)


def parse_moment(query: Query, name: str) -> datetime | None:
    """An RFC 3339 time; without a time zone it is UTC, without a time midnight (as Talon.One
    documents for the loyalty endpoints). The SDK's ``+0000`` offsets are accepted."""
    raw = query.get(name)
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        details = f"{name} must be an RFC 3339 time, got {raw!r}"
        raise _invalid(name, "Invalid type", details) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def parse_list(query: Query, name: str, *, csv: bool = False) -> tuple[str, ...] | None:
    """A list parameter, repeated (``?a=1&a=2``) or, with ``csv``, comma-separated too."""
    values = query.getall(name, [])
    if not values:
        return None
    if csv:
        values = [part for value in values for part in value.split(",") if part]
    return tuple(values)


def parse_enum(
    query: Query, name: str, allowed: Collection[str], values: tuple[str, ...] | None = None
) -> tuple[str, ...] | None:
    """Values of an enum parameter (``values``: already read, e.g. with :func:`parse_list`)."""
    if values is None:
        raw = query.get(name)
        values = None if raw is None else (raw,)
    if values is None:
        return None
    for value in values:
        if value not in allowed:
            options = ", ".join(allowed)
            raise _invalid(name, "enum", f"{name} must be one of the following: {options}")
    return values
