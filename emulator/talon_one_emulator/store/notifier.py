"""What the stores report to whoever sends Talon.One's outbound notifications
(:class:`talon_one_emulator.notifications.outbox.NotificationOutbox`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from talon_one_emulator.store.loyalty_ledger import Transaction

__all__ = ["Notifier"]


class Notifier(Protocol):
    def catalog_synced(
        self, catalog_id: int, version: int, priced: Sequence[tuple[str, float | None]]
    ) -> None:
        """A catalog sync set these prices."""

    def points_changed(self, transactions: Iterable[Transaction]) -> None:
        """These loyalty transactions were recorded."""

    def coupons_created(self, coupons: Sequence[dict[str, Any]]) -> None:
        """An evaluation created (and stored) these coupons."""
