"""Cart item catalogs as stored: the items, the SKU price index and the price history.

Catalogs are declared in the campaign file (``catalogs:``) with their initial items. A sync
applies up to 1000 actions of **one** type (``ADD``, ``PATCH``, ``PATCH_MANY``, ``REMOVE``,
``REMOVE_MANY``) all or nothing, and bumps the catalog's ``version``. A cart item sent without a
``price`` takes the price of its SKU in the first catalog that has one. Every price an item
takes is remembered, with when, for ``bestPriorPrice``. ``syncCatalog`` and ``bestPriorPrice``
are in :mod:`talon_one_emulator.api.catalogs`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from talon_one_emulator.campaigns.declarations import CatalogSpec

__all__ = ["CatalogItem", "CatalogRecord", "CatalogStore"]


@dataclass(frozen=True, slots=True)
class CatalogItem:
    id: int
    sku: str
    price: float | None
    attributes: dict[str, Any] = field(default_factory=dict)
    product: str | None = None


@dataclass(slots=True)
class CatalogRecord:
    id: int
    name: str
    description: str
    created: str
    modified: str
    version: int = 1
    items: dict[str, CatalogItem] = field(default_factory=dict)


class CatalogStore:
    """The Application's catalogs, the SKU price index and the price history.

    Args:
        catalogs: the campaign file's catalogs.
        stamp: when they were created (RFC 3339).
        moment: the same time, for the price history.
    """

    def __init__(self, catalogs: tuple[CatalogSpec, ...], stamp: str, moment: datetime) -> None:
        self.catalogs: dict[int, CatalogRecord] = {}
        self.history: dict[str, list[tuple[datetime, float]]] = {}
        self._next_item_id = 1
        self._prices: dict[str, tuple[float, int]] = {}
        for spec in catalogs:
            record = CatalogRecord(spec.id, spec.name, spec.description, stamp, stamp)
            for item in spec.items:
                record.items[item.sku] = CatalogItem(
                    self.new_item_id(), item.sku, item.price, dict(item.attributes), item.product
                )
                if item.price is not None:
                    self.history.setdefault(item.sku, []).append((moment, item.price))
            self.catalogs[spec.id] = record
        self.reindex()

    def new_item_id(self) -> int:
        item_id = self._next_item_id
        self._next_item_id += 1
        return item_id

    def reindex(self) -> None:
        """Rebuild the SKU → (price, catalogItemID) index after a change."""
        prices: dict[str, tuple[float, int]] = {}
        for catalog in self.catalogs.values():
            for item in catalog.items.values():
                if item.price is not None and item.sku not in prices:
                    prices[item.sku] = (item.price, item.id)
        self._prices = prices

    def price(self, sku: str) -> tuple[float, int] | None:
        """``(price, catalogItemID)`` of a SKU from the first catalog that prices it."""
        return self._prices.get(sku)
