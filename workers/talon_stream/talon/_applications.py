"""Several Talon.One Applications in one worker: each its own client, key, halt and rate cap.

A refused key halts only its Application (:class:`~talon_stream.talon.Halt`): that
Application's calls wait and probe as a halted worker's do, without holding a call slot (see
``TalonCaller.call``'s ``hold``), and the others' records keep flowing. The worker as a whole —
what pauses consumption and what the health endpoint reports — is halted only when every
Application is (:class:`Halts`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

from talon_stream.talon._client import TalonClient
from talon_stream.talon._halt import Halt
from talon_stream.talon._limits import RateLimiter

__all__ = ["Application", "Halts"]


@dataclass(frozen=True, slots=True)
class Application:
    """One Application as the worker calls it."""

    name: str
    talon: TalonClient
    halt: Halt
    rate: RateLimiter | None = None
    catalog_id: int | None = None


class Halts:
    """The halts of every Application, read as one: active while all of them are."""

    def __init__(self, halts: Mapping[str, Halt]) -> None:
        self.by_application = dict(halts)

    @property
    def active(self) -> bool:
        return all(halt.active for halt in self.by_application.values())

    @property
    def reason(self) -> str | None:
        if not self.active:
            return None
        return "; ".join(f"{name}: {halt.reason}" for name, halt in self.by_application.items())

    @property
    def since(self) -> float | None:
        if not self.active:
            return None
        return max((halt.since or time.monotonic()) for halt in self.by_application.values())
