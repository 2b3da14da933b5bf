"""What the emulator's operations report, turned into notifications: the hooks the stores call
after a catalog sync, a change of loyalty points and the creation of coupons."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from talon_one_emulator.notifications.payloads import (
    coupons_created,
    points_changed,
    strikethrough_updates,
)
from talon_one_emulator.notifications.sender import NotificationSender

if TYPE_CHECKING:
    from talon_one_emulator.store.loyalty_ledger import Transaction
    from talon_one_emulator.store.state import EmulatorState

__all__ = ["NotificationOutbox"]


class NotificationOutbox:
    """Builds the notifications of the emulator's changes and hands them to the sender."""

    def __init__(self, state: EmulatorState, sender: NotificationSender) -> None:
        self._state = state
        self.sender = sender
        self._triggers = itertools.count(1)

    def catalog_synced(
        self, catalog_id: int, version: int, priced: Sequence[tuple[str, float | None]]
    ) -> None:
        """A sync set these prices: strikethrough notifications for the priced items."""
        items = [(sku, price) for sku, price in dict(priced).items() if price is not None]
        if not items:
            return
        for payload in strikethrough_updates(
            application_id=self._state.application_id,
            catalog_id=catalog_id,
            catalog_version=version,
            trigger_id=next(self._triggers),
            priced=items,
            stamp=self._state.now_stamp(),
            batch_size=self.sender.settings.batch_size,
        ):
            self.sender.emit("strikethrough", payload)

    def points_changed(self, transactions: Iterable[Transaction]) -> None:
        """Ledger transactions were recorded: one notification each."""
        loyalty = self._state.loyalty
        for tx in transactions:
            profiles: list[str] = []
            per_card = 0
            record = loyalty.cards.get(tx.program_id, {}).get(tx.card or "")
            if record is not None:
                profiles = sorted(record.profiles)
                per_card = record.program.users_per_card_limit
            self.sender.emit("loyalty", points_changed(tx, profiles=profiles, per_card=per_card))

    def coupons_created(self, coupons: Sequence[dict[str, Any]]) -> None:
        """An evaluation created (and stored) these coupons."""
        if coupons:
            payload = coupons_created(coupons, application_id=self._state.application_id)
            self.sender.emit("coupons", payload)
