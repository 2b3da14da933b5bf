"""Cart item catalogs: ``syncCatalog``, ``bestPriorPrice`` and the prices sessions take from them.

Catalogs are declared in the campaign file (``catalogs:``) with their initial items. A sync
applies up to 1000 actions of **one** type (``ADD``, ``PATCH``, ``PATCH_MANY``, ``REMOVE``,
``REMOVE_MANY``) all or nothing, and bumps the catalog's ``version``. A cart item sent without a
``price`` takes the price of its SKU in the first catalog that has one. Every price an item
takes is remembered, with when, for ``bestPriorPrice``. The catalogs are kept in
:mod:`talon_one_emulator.store.catalogs`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from talon_one_emulator.api.validation import check_attributes, pointer, validate_body
from talon_one_emulator.errors import (
    ApiErrorDetail,
    BadRequestError,
    InvalidDataError,
    NotFoundError,
)
from talon_one_emulator.models.promotions import (
    AddItemPayload,
    BestPriorPriceRequest,
    CatalogActionFilter,
    CatalogSyncRequest,
    PatchItemPayload,
    PatchManyPayload,
    RemoveItemPayload,
    RemoveManyPayload,
)
from talon_one_emulator.money import json_number
from talon_one_emulator.store.catalogs import CatalogItem, CatalogRecord, CatalogStore
from talon_one_emulator.store.state import EmulatorState

__all__ = ["CatalogService", "catalog_json"]

Body = dict[str, Any]

_PAYLOADS: dict[str, type[Any]] = {
    "ADD": AddItemPayload,
    "PATCH": PatchItemPayload,
    "PATCH_MANY": PatchManyPayload,
    "REMOVE": RemoveItemPayload,
    "REMOVE_MANY": RemoveManyPayload,
}


def catalog_json(state: EmulatorState, record: CatalogRecord) -> Body:
    """Catalog."""
    return {
        "id": record.id,
        "created": record.created,
        "accountId": state.account_id,
        "modified": record.modified,
        "name": record.name,
        "description": record.description,
        "subscribedApplicationsIds": [state.application_id],
        "version": record.version,
        "createdBy": 1,
    }


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _matcher(flt: CatalogActionFilter, at: tuple[str | int, ...]) -> Callable[[CatalogItem], bool]:
    """A predicate for one filter; numeric operators need a numeric value (else 400)."""
    name, op, value = flt.attr, flt.op, flt.value
    if op == "IN":
        options = value if isinstance(value, list) else str(value).split(",")
        wanted = {str(option).strip() for option in options}
        return lambda item: name in item.attributes and str(item.attributes[name]) in wanted
    if op == "EQ":

        def equals(item: CatalogItem) -> bool:
            if name not in item.attributes:
                return False
            actual = item.attributes[name]
            left, right = _number(actual), _number(value)
            if not isinstance(actual, str) and left is not None and right is not None:
                return left == right
            return str(actual) == str(value)

        return equals
    bound = _number(value)
    if bound is None:
        details = f"{op} needs a numeric value, got {value!r}"
        raise InvalidDataError((ApiErrorDetail("Invalid", details, pointer=pointer(*at)),))
    compare: dict[str, Callable[[float, float], bool]] = {
        "LT": lambda a, b: a < b,
        "LE": lambda a, b: a <= b,
        "GT": lambda a, b: a > b,
        "GE": lambda a, b: a >= b,
    }

    def ordered(item: CatalogItem) -> bool:
        actual = _number(item.attributes.get(name))
        return actual is not None and compare[op](actual, bound)

    return ordered


def _selected(
    items: dict[str, CatalogItem], filters: list[CatalogActionFilter] | None, at: tuple[Any, ...]
) -> list[str]:
    """The SKUs every filter matches (all items without filters)."""
    matchers = [_matcher(f, (*at, "filters", i)) for i, f in enumerate(filters or ())]
    return [sku for sku, item in items.items() if all(match(item) for match in matchers)]


def _payload(model: type[Any], payload: dict[str, Any], index: int) -> Any:
    """The validated payload of action ``index``; errors point into the request body."""
    try:
        return validate_body(model, payload)
    except InvalidDataError as exc:
        prefix = pointer("actions", index, "payload")
        raise InvalidDataError(
            tuple(replace(error, pointer=prefix + (error.pointer or "")) for error in exc.errors)
        ) from exc


def _exists(sku: str, at: tuple[Any, ...]) -> ApiErrorDetail:
    details = f"an item with sku {sku!r} exists already; set replaceIfExists to replace it"
    return ApiErrorDetail("Invalid", details, pointer=pointer(*at, "sku"))


def _missing(sku: str, at: tuple[Any, ...]) -> ApiErrorDetail:
    details = f"the catalog has no item with sku {sku!r}"
    return ApiErrorDetail("Invalid", details, pointer=pointer(*at, "sku"))


def _apply(
    store: CatalogStore, items: dict[str, CatalogItem], payloads: list[Any]
) -> tuple[dict[str, CatalogItem], list[tuple[str, float]]]:
    """The catalog's items after the actions, and the prices they set.

    Raises:
        InvalidDataError: an action names an item that is missing (or, for ``ADD``, exists).
    """
    errors: list[ApiErrorDetail] = []
    priced: list[tuple[str, float]] = []
    for index, payload in enumerate(payloads):
        at = ("actions", index, "payload")
        if isinstance(payload, AddItemPayload):
            existing = items.get(payload.sku)
            if existing is not None and not payload.replace_if_exists:
                errors.append(_exists(payload.sku, at))
                continue
            price = payload.price
            if price is None and existing is not None:
                price = existing.price  # a replaced item keeps its price
            item_id = existing.id if existing is not None else store.new_item_id()
            product = payload.product.name if payload.product is not None else None
            items[payload.sku] = CatalogItem(
                item_id, payload.sku, price, dict(payload.attributes or {}), product
            )
        elif isinstance(payload, PatchItemPayload):
            existing = items.get(payload.sku)
            if existing is None and not payload.create_if_not_exists:
                errors.append(_missing(payload.sku, at))
                continue
            if existing is None:
                existing = CatalogItem(store.new_item_id(), payload.sku, None)
            items[payload.sku] = replace(
                existing,
                price=payload.price if payload.price is not None else existing.price,
                attributes={**existing.attributes, **(payload.attributes or {})},
                product=payload.product.name if payload.product is not None else existing.product,
            )
        elif isinstance(payload, PatchManyPayload):
            for sku in _selected(items, payload.filters, at):
                item = items[sku]
                items[sku] = replace(
                    item,
                    price=payload.price if payload.price is not None else item.price,
                    attributes={**item.attributes, **(payload.attributes or {})},
                )
                if payload.price is not None:
                    priced.append((sku, payload.price))
            continue
        elif isinstance(payload, RemoveItemPayload):
            if payload.sku not in items:
                errors.append(_missing(payload.sku, at))
                continue
            del items[payload.sku]
        elif isinstance(payload, RemoveManyPayload):
            for sku in _selected(items, payload.filters, at):
                del items[sku]
        price = getattr(payload, "price", None)
        if price is not None:
            priced.append((payload.sku, price))
    if errors:
        raise InvalidDataError(tuple(errors))
    return items, priced


class CatalogService:
    """``syncCatalog`` and ``bestPriorPrice`` over one
    :class:`~talon_one_emulator.store.state.EmulatorState`."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state

    def sync_catalog(self, catalog_id: str, body: Any) -> Body:
        """syncCatalog: apply the actions, all or nothing; answers the Catalog.

        Raises:
            NotFoundError: no such catalog.
            InvalidDataError: the body is invalid, mixes action types, repeats a SKU, names an
                item that does not exist (or exists, for ``ADD``), or an undeclared attribute.
            BadRequestError: ``version`` is not the catalog's current version.
        """
        store = self.state.catalogs
        try:
            record = store.catalogs.get(int(catalog_id))
        except ValueError:
            record = None
        if record is None:
            raise NotFoundError(f"Catalog {catalog_id} not found")
        request = validate_body(CatalogSyncRequest, body)
        kinds = {action.type for action in request.actions}
        if len(kinds) > 1:
            details = "you can perform only one type of action in a single sync request"
            raise InvalidDataError((ApiErrorDetail("Invalid", details, pointer="/actions"),))
        if request.version is not None and request.version != record.version:
            raise BadRequestError(
                f"Catalog {record.id} is at version {record.version}, not {request.version}"
            )
        kind = request.actions[0].type
        if kind == "ADD_PRICE_ADJUSTMENT":
            details = "ADD_PRICE_ADJUSTMENT needs the price types feature, which is not enabled"
            raise InvalidDataError((ApiErrorDetail("Invalid", details, pointer="/actions"),))
        payloads = [
            _payload(_PAYLOADS[kind], action.payload, index)
            for index, action in enumerate(request.actions)
        ]
        self._check(payloads)
        moment = self.state.clock()
        items, priced = _apply(store, dict(record.items), payloads)
        record.items = items
        record.version += 1
        record.modified = self.state.now_stamp()
        for sku, price in priced:
            store.history.setdefault(sku, []).append((moment, price))
        store.reindex()
        if self.state.notifications is not None:
            self.state.notifications.catalog_synced(record.id, record.version, priced)
        return catalog_json(self.state, record)

    def _check(self, payloads: list[Any]) -> None:
        """Every SKU once; only declared cart item attributes."""
        errors: list[ApiErrorDetail] = []
        declared = self.state.campaigns.attributes.cart_item
        seen: dict[str, int] = {}
        for index, payload in enumerate(payloads):
            at = ("actions", index, "payload")
            sku = getattr(payload, "sku", None)
            if sku is not None:
                if sku in seen:
                    details = f"duplicate sku {sku!r} (also in action {seen[sku]})"
                    errors.append(ApiErrorDetail("Invalid", details, pointer=pointer(*at, "sku")))
                seen.setdefault(sku, index)
            attributes = getattr(payload, "attributes", None)
            check_attributes(attributes, declared, "CartItem", (*at, "attributes"), errors)
        if errors:
            raise InvalidDataError(tuple(errors))

    def best_prior_price(self, body: Any) -> list[Body]:
        """bestPriorPrice: per SKU, the lowest price it had in the time frame (none: omitted).

        The time frame is the ``timeframe`` days before ``timeframeEndDate``; a price set before
        the frame that was still in force when it began counts too.

        Raises:
            InvalidDataError: the body is invalid, or ``timeframe`` is not a number of days.
        """
        request = validate_body(BestPriorPriceRequest, body)
        if request.strict_end_date is None and request.timeframe_end_date_type is None:
            details = "strictEndDate (or timeframeEndDateType) is required"
            raise InvalidDataError((ApiErrorDetail("required", details, pointer="/strictEndDate"),))
        try:
            days = int(request.timeframe)
        except ValueError:
            days = -1
        if days < 0:
            details = f"timeframe must be a number of days, got {request.timeframe!r}"
            raise InvalidDataError((ApiErrorDetail("Invalid", details, pointer="/timeframe"),))
        end = request.timeframe_end_date
        start = end - timedelta(days=days)
        target = (
            request.target.model_dump(by_alias=True, exclude_none=True)
            if request.target is not None
            else {"targetType": "NONE"}
        )
        out: list[Body] = []
        for sku in dict.fromkeys(request.skus):
            best = _lowest(self.state.catalogs.history.get(sku, ()), start, end)
            if best is None:
                continue
            observed, price = best
            out.append(
                {
                    "id": len(out) + 1,
                    "sku": sku,
                    "observedAt": observed.isoformat().replace("+00:00", "Z"),
                    "contextId": "",
                    "contextIds": [],
                    "price": json_number(price),
                    "metadata": {"influencingCampaignIDs": [], "influencingCampaignDetails": []},
                    "target": target,
                }
            )
        return out


def _lowest(
    history: Iterable[tuple[datetime, float]], start: datetime, end: datetime
) -> tuple[datetime, float] | None:
    """The lowest ``(when, price)`` in force at some moment between ``start`` and ``end``."""
    in_force: list[tuple[datetime, float]] = []
    before: tuple[datetime, float] | None = None
    for observed, price in history:
        if observed <= start:
            before = (observed, price)
        elif observed <= end:
            in_force.append((observed, price))
    if before is not None:
        in_force.append(before)
    if not in_force:
        return None
    return min(in_force, key=lambda entry: (entry[1], entry[0]))
