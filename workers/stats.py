"""Counters a worker keeps about itself: what the demo shows and, later, what metrics export."""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

__all__ = ["WorkerStats"]


@dataclass
class WorkerStats:
    """Plain counters, updated on the event loop only (no locks needed)."""

    consumed: int = 0
    effects_published: int = 0
    dead_lettered: int = 0
    retries: int = 0
    calls: Counter[str] = field(default_factory=Counter)  # by operation
    statuses: Counter[int] = field(default_factory=Counter)  # by HTTP status
    effect_types: Counter[str] = field(default_factory=Counter)
    dlq_reasons: Counter[str] = field(default_factory=Counter)  # by error class
    #: The latest few envelopes (decoded), for a human to look at.
    recent: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=5))

    @property
    def outcomes(self) -> int:
        return self.effects_published + self.dead_lettered
