"""Which cart lines a return request means, validated against the stored session."""

from __future__ import annotations

from collections.abc import Sequence

from talon_one_emulator.api.validation import pointer
from talon_one_emulator.errors import ApiErrorDetail, InvalidDataError
from talon_one_emulator.models.integration import ReturnedCartItem
from talon_one_emulator.store.state import SessionRecord

__all__ = ["resolve_returns"]


def resolve_returns(session: SessionRecord, items: Sequence[ReturnedCartItem]) -> dict[int, int]:
    """Position → units to return for ``returnedCartItems``.

    An item names its cart line by ``position`` (checked against ``sku`` when both are given) or
    by ``sku`` alone (the first line of that SKU with units left); ``quantity`` defaults to every
    unit left on the line.

    Raises:
        InvalidDataError: one error per item that cannot be returned, pointing at it.
    """
    wanted: dict[int, int] = {}
    errors: list[ApiErrorDetail] = []
    for index, item in enumerate(items):
        at = ("return", "returnedCartItems", index)
        position = item.position
        if position is not None:
            if not 0 <= position < len(session.items):
                errors.append(
                    ApiErrorDetail(
                        "Invalid",
                        f"there is no cart item at position {position}",
                        pointer=pointer(*at, "position"),
                    )
                )
                continue
            if item.sku is not None and item.sku != session.items[position].sku:
                errors.append(
                    ApiErrorDetail(
                        "Invalid",
                        f"the cart item at position {position} is not {item.sku!r}",
                        pointer=pointer(*at, "sku"),
                    )
                )
                continue
        elif item.sku is not None:
            position = next(
                (
                    p
                    for p, stored in enumerate(session.items)
                    if stored.sku == item.sku and stored.remaining - wanted.get(p, 0) > 0
                ),
                None,
            )
            if position is None:
                errors.append(
                    ApiErrorDetail(
                        "Invalid",
                        f"no returnable cart item with sku {item.sku!r}",
                        pointer=pointer(*at, "sku"),
                    )
                )
                continue
        else:
            errors.append(
                ApiErrorDetail("required", "position or sku is required", pointer=pointer(*at))
            )
            continue
        left = session.items[position].remaining - wanted.get(position, 0)
        quantity = item.quantity if item.quantity is not None else left
        if not 1 <= quantity <= left:
            errors.append(
                ApiErrorDetail(
                    "Invalid",
                    f"quantity must be between 1 and {left} for the cart item at position "
                    f"{position}",
                    pointer=pointer(*at, "quantity"),
                )
            )
            continue
        wanted[position] = wanted.get(position, 0) + quantity
    if errors:
        raise InvalidDataError(tuple(errors))
    if not wanted:
        raise InvalidDataError(
            (
                ApiErrorDetail(
                    "minItems",
                    "returnedCartItems must not be empty",
                    pointer=pointer("return", "returnedCartItems"),
                ),
            )
        )
    return wanted
