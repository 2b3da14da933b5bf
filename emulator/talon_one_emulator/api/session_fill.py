"""How a NewCustomerSessionV2 body changes a stored session.

Only the keys a body sends (and not as ``null``) change the session: an update is cumulative.
Cart items are stored as sent (minus the read-only keys), taking their catalog price when they
have none.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from talon_one_emulator.money import json_number
from talon_one_emulator.store.state import CartItemRecord

if TYPE_CHECKING:
    from talon_one_emulator.models.integration import NewCustomerSessionV2
    from talon_one_emulator.store.catalogs import CatalogStore
    from talon_one_emulator.store.state import SessionRecord

__all__ = ["fill_session"]

# CartItem fields a client may set; read-only ones (position, returnedQuantity, ...) are computed.
_ITEM_KEYS = frozenset(
    {
        "name",
        "sku",
        "quantity",
        "price",
        "category",
        "product",
        "weight",
        "height",
        "width",
        "length",
        "attributes",
        "additionalCosts",
        "selectedPriceType",
    }
)

# The NewCustomerSessionV2 fields stored on the session (state and evaluableCampaignIds are not).
_SESSION_FIELDS = frozenset(
    {
        "profile_id",
        "store_integration_id",
        "coupon_codes",
        "referral_code",
        "loyalty_cards",
        "identifiers",
        "cart_items",
        "additional_costs",
        "attributes",
    }
)


def _items(
    session: NewCustomerSessionV2, raw: Any, catalogs: CatalogStore | None = None
) -> list[CartItemRecord]:
    """Stored cart items; ``raw`` is the validated JSON list, echoed back without re-dumping.

    An item without ``price`` takes its SKU's catalog price (and ``catalogItemID``).
    """
    records = []
    raw_items = raw if isinstance(raw, list) else [None] * len(session.cart_items or ())
    for item, sent in zip(session.cart_items or (), raw_items, strict=True):
        if isinstance(sent, dict):
            if _ITEM_KEYS.issuperset(sent) and None not in sent.values():
                data = sent  # freshly parsed for this request, with nothing to drop: keep it
            else:
                data = {
                    key: value
                    for key, value in sent.items()
                    if key in _ITEM_KEYS and value is not None
                }
        else:
            data = item.model_dump(by_alias=True, exclude_none=True)
        price = item.price if item.price is not None else 0.0
        if item.price is None and catalogs is not None:
            found = catalogs.price(item.sku)
            if found is not None:
                price, data["catalogItemID"] = found
                data["price"] = json_number(price)
        records.append(CartItemRecord(data, item.sku, price, item.quantity, item.category))
    return records


def _costs(session: NewCustomerSessionV2) -> dict[str, dict[str, Any]]:
    costs = session.additional_costs or {}
    return {name: {"price": cost.price} for name, cost in costs.items()}


def fill_session(
    session: SessionRecord,
    incoming: NewCustomerSessionV2,
    raw_items: Any,
    catalogs: CatalogStore,
    *,
    replace_all: bool,
) -> None:
    """Copy the fields ``incoming`` sends onto ``session`` (``raw_items``: the body's cart items
    as parsed JSON). ``replace_all``: a new session, whose ``profileId`` is already set."""
    for name in incoming.model_fields_set & _SESSION_FIELDS:
        value = getattr(incoming, name)
        if value is None:
            continue
        if name == "cart_items":
            session.set_cart(_items(incoming, raw_items, catalogs))
        elif name == "attributes":
            session.attributes.update(value)
        elif name == "additional_costs":
            session.additional_costs = _costs(incoming)
        elif name in ("coupon_codes", "loyalty_cards", "identifiers"):
            setattr(session, name, list(value))
        elif name == "store_integration_id":
            session.store_integration_id = value
        elif name == "referral_code":
            session.referral_code = value or None
        elif not replace_all:  # profile_id: set when the session is created
            session.profile_id = value or None
