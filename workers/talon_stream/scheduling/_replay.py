"""Replays that never put an older cart over a newer one when cart updates are coalesced.

A coalesced call's Idempotency-Key names the records it stands for, so Talon.One answers a
replayed call from its store only when the replay groups the records exactly as before. After a
crash or a rebalance the next owner of a partition reads again from the committed offset, and
what waited behind a session's call then differs, so its groups may differ too. A group Talon.One
has not seen is a new call carrying the session as of the group's last record; if the earlier
owner had already applied a *later* record of that session, the call puts an older cart over a
newer one — and stays so when the later record's own call is then answered from the store.

The rule that prevents it: a replayed session is first brought, in one call, to the state of the
last of its records the earlier owner may have called for. That call carries the newest state
Talon.One can hold (or is one it has answered: same records, same key); every later record was
never called for, so any grouping of them is safe. What "may have called for" means is written
down before it happens:

* **The horizon.** Each owner commits with the offsets, in the commit's metadata, an offset below
  which lies every record it may start, *before* it starts one at or beyond it: a record fetched
  past the committed horizon waits until a commit raises it (the worker commits at once). The
  horizon is kept ``span`` records ahead of what was fetched, so in steady flow nothing waits.
* **The window.** The next owner reads the committed offset and the horizon: the records between
  them (and below the log end at assignment — later ones did not exist) are the *window*. Its
  scheduler holds them until the window is read in full, then starts each session's cart updates
  among them as one call (:class:`~talon_stream.scheduling.KeyedScheduler`: never across a state
  change or another record of the customer).
* **No horizon** (the commit was made by a version or tool that does not write one): the earlier
  owner made one call per record. The records up to the log end at assignment are then run one
  call each, never joined, each under its own key.
"""

from __future__ import annotations

import enum
from typing import NamedTuple

__all__ = ["ReplayMode", "ReplayWindow", "Resume", "next_horizon"]


class Resume(NamedTuple):
    """What the group's commit says about a partition when it is assigned."""

    #: The committed offset reading starts from (None: the group never committed one).
    committed: int | None = None
    #: Offsets above it that already have their outcome.
    finished: frozenset[int] = frozenset()
    #: The horizon the earlier owner committed (None: it wrote none).
    horizon: int | None = None
    #: The partition's log end (high watermark) at assignment, when it could be read.
    log_end: int | None = None


class ReplayMode(enum.Enum):
    LIVE = "live"  # never called for: joins as coalescing allows
    WINDOW = "window"  # may have been called for: one call per session run, once read in full
    SOLO = "solo"  # may have been called for on its own: one call of its own


class ReplayWindow:
    """The records of one partition an earlier owner may have called Talon.One for, from the
    committed offset to ``end`` (exclusive). ``grouped``: window records (the earlier owner wrote
    a horizon); else solo records."""

    __slots__ = ("end", "fetched", "grouped", "opened", "read", "start", "taken")

    def __init__(self, start: int, end: int, *, grouped: bool) -> None:
        self.start = start
        self.end = end
        self.grouped = grouped
        self.fetched = 0  # window records handed over by the consumer
        self.taken = 0  # of those, the ones the scheduler has (or that were finished before)
        self.read = False  # every record below `end` has been fetched
        self.opened = not grouped

    @staticmethod
    def of(resume: Resume) -> ReplayWindow | None:
        """The window ``resume`` implies, or None (nothing to replay with care)."""
        start = resume.committed
        if start is None:
            return None  # the group never ran this partition: nothing was called for
        if resume.horizon is not None:
            end = resume.horizon if resume.log_end is None else min(resume.horizon, resume.log_end)
            grouped = True
        elif resume.log_end is not None:
            end, grouped = resume.log_end, False
        else:
            return None
        return ReplayWindow(start, end, grouped=grouped) if end > start else None

    def mode(self, offset: int) -> ReplayMode:
        if offset >= self.end:
            return ReplayMode.LIVE
        return ReplayMode.WINDOW if self.grouped else ReplayMode.SOLO

    def fetch(self, offset: int) -> None:
        """A record was handed over by the consumer."""
        if offset < self.end:
            self.fetched += 1
        if offset >= self.end - 1:
            self.read = True

    def take(self, offset: int) -> None:
        """A record reached the scheduler (or was skipped as finished before)."""
        if offset < self.end:
            self.taken += 1

    def caught_up(self) -> None:
        """The consumer has nothing more to hand over below the log end (so below ``end``)."""
        self.read = True

    def ready(self) -> bool:
        """Whether the window's records may start now: all read and all with the scheduler."""
        return not self.opened and self.read and self.taken >= self.fetched


def next_horizon(committed: int | None, fetched_next: int, span: int) -> int:
    """The horizon to commit: ``committed`` while it is more than ``span // 2`` records ahead of
    ``fetched_next`` (the offset after the last record fetched), else ``span`` ahead of it. Never
    lower than ``committed``."""
    if committed is not None and committed - fetched_next > span // 2:
        return committed
    return max(fetched_next + span, committed or 0)
