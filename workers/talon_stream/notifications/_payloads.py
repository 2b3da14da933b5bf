"""Talon.One's outbound notifications: what each request body holds, and the records it becomes.

One request carries one notification object, or a JSON array of them. Every object names its
type in ``NotificationType``; the type says where its elements are and what each concerns::

    NotificationType                          elements              category   key
    StrikethroughPrice                        changedItems[]        pricing    sku
    LoyaltyPointsAdded / ...Deducted          the object itself     loyalty    ProfileIntegrationID
    LoyaltyAddedDeductedPointsBalances        the object itself     loyalty    ProfileIntegrationID
    LoyaltyCardPointsAdded / ...Deducted      the object itself     loyalty    CardIdentifier
    LoyaltyCardAddedDeductedPointsBalances    the object itself     loyalty    CardIdentifier
    LoyaltyPointsExpiring                     Data[]                loyalty    CustomerProfileID
    LoyaltyCardPointsExpiring                 Data[]                loyalty    CardIdentifier
    LoyaltyPointsPendingToActive              Data[]                loyalty    CustomerProfileID
    TierUpgrade / TierDowngrade / TierWillDowngrade   Data[]        loyalty    CustomerProfileID
    CouponCreated / CouponUpdated / CouponDeleted     data[]        coupons    value (the code)
        (no data: more than 1,000 coupons)    the object itself     coupons    BatchID
    AsyncCouponsCreated / CouponsUpdated / CouponsDeleted  itself   coupons    BatchID
    CouponCodeExpiring                        Data[]                coupons    CouponValue
    CampaignNotification                      Data[]                campaigns  campaign.id
    CampaignEvaluationTreeChanged             Data[]                campaigns  applicationId

Each element becomes one :class:`Notification`: its key, and a JSON value holding the element,
the fields of the object around it (the batch's context) and a stable ``id``. Unknown fields
are kept as they are; a missing key or an unknown type is refused (:class:`PayloadError`).
docs/notifications.md lists the sources of these names.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from talon_stream.notifications._errors import PayloadError

__all__ = ["CATEGORIES", "Category", "Notification", "notification_id", "parse_notifications"]

Category = Literal["pricing", "loyalty", "coupons", "campaigns"]
CATEGORIES: tuple[Category, ...] = ("pricing", "loyalty", "coupons", "campaigns")

Body = dict[str, Any]
#: Where a type's elements are (``None``: the object is the one element) and its key in each.
KeyOf = Callable[[Body], Any]


@dataclass(frozen=True, slots=True)
class _Shape:
    category: Category
    elements: str | None
    key: KeyOf
    key_name: str


def _field(name: str) -> KeyOf:
    return lambda element: element.get(name)


def _campaign_id(element: Body) -> Any:
    campaign = element.get("campaign")
    return campaign.get("id") if isinstance(campaign, dict) else None


_PROFILE_POINTS = _Shape("loyalty", None, _field("ProfileIntegrationID"), "ProfileIntegrationID")
_CARD_POINTS = _Shape("loyalty", None, _field("CardIdentifier"), "CardIdentifier")
_PROFILE_DATA = _Shape("loyalty", "Data", _field("CustomerProfileID"), "CustomerProfileID")
_COUPON_DATA = _Shape("coupons", "data", _field("value"), "value")
_COUPON_BATCH = _Shape("coupons", None, _field("BatchID"), "BatchID")

SHAPES: dict[str, _Shape] = {
    "StrikethroughPrice": _Shape("pricing", "changedItems", _field("sku"), "sku"),
    "LoyaltyPointsAdded": _PROFILE_POINTS,
    "LoyaltyPointsDeducted": _PROFILE_POINTS,
    "LoyaltyAddedDeductedPointsBalances": _PROFILE_POINTS,
    "LoyaltyCardPointsAdded": _CARD_POINTS,
    "LoyaltyCardPointsDeducted": _CARD_POINTS,
    "LoyaltyCardAddedDeductedPointsBalances": _CARD_POINTS,
    "LoyaltyPointsExpiring": _PROFILE_DATA,
    "LoyaltyCardPointsExpiring": _Shape(
        "loyalty", "Data", _field("CardIdentifier"), "CardIdentifier"
    ),
    "LoyaltyPointsPendingToActive": _PROFILE_DATA,
    "TierUpgrade": _PROFILE_DATA,
    "TierDowngrade": _PROFILE_DATA,
    "TierWillDowngrade": _PROFILE_DATA,
    "CouponCreated": _COUPON_DATA,
    "CouponUpdated": _COUPON_DATA,
    "CouponDeleted": _COUPON_DATA,
    "AsyncCouponsCreated": _COUPON_BATCH,
    "CouponsUpdated": _COUPON_BATCH,
    "CouponsDeleted": _COUPON_BATCH,
    "CouponCodeExpiring": _Shape("coupons", "Data", _field("CouponValue"), "CouponValue"),
    "CampaignNotification": _Shape("campaigns", "Data", _campaign_id, "campaign.id"),
    "CampaignEvaluationTreeChanged": _Shape(
        "campaigns", "Data", _field("applicationId"), "applicationId"
    ),
}


@dataclass(frozen=True, slots=True)
class Notification:
    """One element of a notification, ready to publish.

    Attributes:
        id: stable across Talon.One's retries of the same request (see
            :func:`notification_id`).
        category: which topic it goes to.
        notification_type: the ``NotificationType`` it came with.
        key: the customer integration ID, card, SKU, coupon code, batch or campaign it concerns.
        value: the JSON record value: ``id``, ``notificationType``, ``category``, ``key``,
            ``notification`` (the element) and ``context`` (the fields around it).
    """

    id: str
    category: Category
    notification_type: str
    key: str
    value: bytes


def notification_id(message_id: str | None, canonical: bytes, index: int) -> str:
    """The id of element ``index`` of a request: derived from Talon.One's ``X-UUID`` message
    id when the request has one (a retry repeats it), else from the element's canonical JSON
    (``canonical``: its type, context and content with sorted keys)."""
    digest = hashlib.sha256()
    if message_id:
        digest.update(b"x-uuid\0" + message_id.encode() + b"\0" + str(index).encode())
    else:
        digest.update(b"content\0" + canonical)
    return digest.hexdigest()[:32]


def _objects(document: Any) -> list[Body]:
    items = document if isinstance(document, list) else [document]
    if not items:
        raise PayloadError("an empty array holds no notification")
    for position, item in enumerate(items):
        if not isinstance(item, dict):
            raise PayloadError(f"element {position} is not a JSON object")
    return items


def _key_text(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value:
        return value
    return None


def _elements(shape: _Shape, obj: Body, where: str) -> tuple[list[Body], Body]:
    """The elements of one object and the context around them."""
    if shape.elements is None:
        return [obj], {}
    found = obj.get(shape.elements)
    if found is None and shape.category == "coupons" and obj.get("BatchID"):
        return [obj], {}  # more than 1,000 coupons: only the batch is named
    if not isinstance(found, list):
        raise PayloadError(f"{where}: {shape.elements} is not an array")
    context = {name: value for name, value in obj.items() if name != shape.elements}
    return found, context


def parse_notifications(body: bytes, message_id: str | None = None) -> list[Notification]:
    """Every notification element in a request body (a JSON object or array of objects), in
    order, each with its category, key and id.

    Raises:
        PayloadError: not JSON, not objects, an unknown ``NotificationType``, or an element
            without the field its key comes from.
    """
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise PayloadError(f"not JSON: {exc}") from exc
    out: list[Notification] = []
    for position, obj in enumerate(_objects(document)):
        out.extend(_split(obj, f"object {position}", message_id, len(out)))
    return out


def _split(obj: Body, where: str, message_id: str | None, first: int) -> Iterator[Notification]:
    kind = obj.get("NotificationType")
    if not isinstance(kind, str):
        raise PayloadError(f"{where}: no NotificationType")
    shape = SHAPES.get(kind)
    if shape is None:
        raise PayloadError(f"{where}: unknown NotificationType {kind!r}")
    elements, context = _elements(shape, obj, where)
    for offset, element in enumerate(elements):
        if not isinstance(element, dict):
            raise PayloadError(f"{where}: element {offset} of {shape.elements} is not an object")
        key_field = "BatchID" if element is obj and shape.elements else shape.key_name
        key = _key_text(element.get("BatchID") if key_field == "BatchID" else shape.key(element))
        if key is None:
            raise PayloadError(f"{where}: {kind} element {offset} has no {key_field}")
        canonical = orjson.dumps([kind, context, element], option=orjson.OPT_SORT_KEYS)
        ident = notification_id(message_id, canonical, first + offset)
        value = orjson.dumps(
            {
                "id": ident,
                "notificationType": kind,
                "category": shape.category,
                "key": key,
                "notification": element,
                "context": context,
            }
        )
        yield Notification(ident, shape.category, kind, key, value)
