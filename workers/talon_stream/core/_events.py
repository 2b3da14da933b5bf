"""The input event envelope: one JSON document per Kafka record, one pydantic model per type.

Every event shares the envelope fields ``eventId``, ``type``, ``occurredAt``, ``profileId`` and
``sessionId``; ``payload`` depends on ``type``. ``docs/events.md`` documents the format. Models
forbid unknown fields so a misspelt field is an error with a name, not silently ignored data.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel

from talon_stream._exceptions import DecodeError

__all__ = [
    "EVENT_MODELS",
    "EVENT_TYPES",
    "AdditionalCost",
    "AudiencesChanges",
    "CartItem",
    "CartUpdated",
    "CustomerErased",
    "CustomerEvent",
    "CustomerEventPayload",
    "CustomerUpdated",
    "CustomerUpdatedPayload",
    "Event",
    "OrderCancelled",
    "OrderItemsReturned",
    "OrderPlaced",
    "OrderReopened",
    "ProductDeleted",
    "ProductPayload",
    "ProductRef",
    "ProductUpdated",
    "ProductUpserted",
    "ReturnedItem",
    "ReturnedItemsPayload",
    "SessionPayload",
    "SkuPayload",
    "decode_event",
    "validate_event",
]

NonEmpty = Annotated[str, Field(min_length=1, max_length=1000)]
Code = Annotated[str, Field(max_length=100)]
Attributes = dict[str, Any]


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class AdditionalCost(_Model):
    price: float


class CartItem(_Model):
    sku: NonEmpty
    quantity: Annotated[int, Field(ge=1)]
    name: str | None = None
    price: float | None = None
    category: str | None = None
    attributes: Attributes | None = None
    additional_costs: dict[str, AdditionalCost] | None = None


class SessionPayload(_Model):
    """What a cart or order event says about the customer session. Omitted fields keep their
    value in Talon.One (its session update is cumulative); ``couponCodes: []`` clears coupons."""

    cart_items: Annotated[list[CartItem], Field(max_length=1000)] | None = None
    coupon_codes: list[Code] | None = None
    referral_code: Code | None = None
    loyalty_cards: Annotated[list[str], Field(max_length=1)] | None = None
    additional_costs: dict[str, AdditionalCost] | None = None
    identifiers: Annotated[list[str], Field(max_length=5)] | None = None
    store_integration_id: NonEmpty | None = None
    attributes: Attributes | None = None

    @model_validator(mode="after")
    def _quantity_limit(self) -> SessionPayload:
        if self.cart_items and sum(item.quantity for item in self.cart_items) > 10_000:
            raise ValueError("the cart's total quantity is over Talon.One's limit of 10000")
        return self


class ReturnedItem(_Model):
    """One returned line, identified by its ``position`` in the session's cart or its ``sku``."""

    quantity: Annotated[int, Field(ge=1)]
    position: Annotated[int, Field(ge=0)] | None = None
    sku: NonEmpty | None = None

    @model_validator(mode="after")
    def _identified(self) -> ReturnedItem:
        if self.position is None and self.sku is None:
            raise ValueError("a returned item needs a position or a sku")
        return self


class ReturnedItemsPayload(_Model):
    items: Annotated[list[ReturnedItem], Field(min_length=1, max_length=1000)]


class EmptyPayload(_Model):
    reason: str | None = None


class AudiencesChanges(_Model):
    adds: list[int] = Field(default_factory=list)
    deletes: list[int] = Field(default_factory=list)


class CustomerUpdatedPayload(_Model):
    attributes: Attributes | None = None
    audiences_changes: AudiencesChanges | None = None
    #: Overrides the worker's default (``TALON_STREAM_PROFILE_RUN_RULE_ENGINE``) for this event.
    run_rule_engine: bool | None = None


class CustomerEventPayload(_Model):
    event_type: NonEmpty
    attributes: Attributes | None = None
    store_integration_id: NonEmpty | None = None
    loyalty_cards: Annotated[list[str], Field(max_length=1)] | None = None


class ProductRef(_Model):
    """The product an item (a variant) belongs to."""

    name: NonEmpty


class ProductPayload(_Model):
    """A catalog item: its SKU and, for ``product.upserted``, its whole state (what is left out
    is unset); for ``product.updated``, only what changes."""

    sku: NonEmpty
    price: float | None = None
    attributes: Attributes | None = None
    product: ProductRef | None = None


class SkuPayload(_Model):
    sku: NonEmpty


class _Envelope(_Model):
    type: str
    event_id: NonEmpty
    occurred_at: AwareDatetime
    profile_id: str | None = None
    session_id: NonEmpty | None = None

    #: The id a type of event cannot do without: its field and its name on the wire.
    _needs: ClassVar[tuple[str, str] | None] = None

    @model_validator(mode="after")
    def _has_needed_id(self) -> _Envelope:
        if self._needs is not None and not getattr(self, self._needs[0]):
            raise ValueError(f"a {self.type} event needs a {self._needs[1]}")
        return self


class _SessionEvent(_Envelope):
    _needs: ClassVar[tuple[str, str] | None] = ("session_id", "sessionId")


class CartUpdated(_SessionEvent):
    type: Literal["cart.updated"] = "cart.updated"
    payload: SessionPayload = Field(default_factory=SessionPayload)


class OrderPlaced(_SessionEvent):
    type: Literal["order.placed"] = "order.placed"
    payload: SessionPayload = Field(default_factory=SessionPayload)


class OrderCancelled(_SessionEvent):
    type: Literal["order.cancelled"] = "order.cancelled"
    payload: EmptyPayload = Field(default_factory=EmptyPayload)


class OrderItemsReturned(_SessionEvent):
    type: Literal["order.items_returned"] = "order.items_returned"
    payload: ReturnedItemsPayload


class OrderReopened(_SessionEvent):
    type: Literal["order.reopened"] = "order.reopened"
    payload: EmptyPayload = Field(default_factory=EmptyPayload)


class _ProfileEvent(_Envelope):
    _needs: ClassVar[tuple[str, str] | None] = ("profile_id", "profileId")


class CustomerUpdated(_ProfileEvent):
    type: Literal["customer.updated"] = "customer.updated"
    payload: CustomerUpdatedPayload = Field(default_factory=CustomerUpdatedPayload)


class CustomerEvent(_ProfileEvent):
    type: Literal["customer.event"] = "customer.event"
    payload: CustomerEventPayload


class CustomerErased(_ProfileEvent):
    """The customer asked to be forgotten: their personal data is deleted in Talon.One, and
    their later records are refused (dead-lettered) rather than sent."""

    type: Literal["customer.erased"] = "customer.erased"
    payload: EmptyPayload = Field(default_factory=EmptyPayload)


class ProductUpserted(_Envelope):
    """A catalog item created or replaced: sync action ``ADD`` (``replaceIfExists``). It says
    the whole item, so it needs its price."""

    type: Literal["product.upserted"] = "product.upserted"
    payload: ProductPayload

    @model_validator(mode="after")
    def _priced(self) -> ProductUpserted:
        if self.payload.price is None:
            raise ValueError(
                "a product.upserted event needs payload.price (it replaces the whole item; "
                "send product.updated to change some fields only)"
            )
        return self


class ProductUpdated(_Envelope):
    """Some fields of a catalog item changed: sync action ``PATCH`` (``createIfNotExists``)."""

    type: Literal["product.updated"] = "product.updated"
    payload: ProductPayload


class ProductDeleted(_Envelope):
    """A catalog item removed: sync action ``REMOVE``."""

    type: Literal["product.deleted"] = "product.deleted"
    payload: SkuPayload


Event = Annotated[
    CartUpdated
    | OrderPlaced
    | OrderCancelled
    | OrderItemsReturned
    | OrderReopened
    | CustomerUpdated
    | CustomerEvent
    | CustomerErased
    | ProductUpserted
    | ProductUpdated
    | ProductDeleted,
    Field(discriminator="type"),
]

#: Each event type's model, by its ``type`` value, in the order the docs list them.
EVENT_MODELS: Mapping[str, type[BaseModel]] = {
    model.model_fields["type"].default: model
    for model in (
        CartUpdated,
        OrderPlaced,
        OrderCancelled,
        OrderItemsReturned,
        OrderReopened,
        CustomerUpdated,
        CustomerEvent,
        CustomerErased,
        ProductUpserted,
        ProductUpdated,
        ProductDeleted,
    )
}
EVENT_TYPES: tuple[str, ...] = tuple(EVENT_MODELS)

_EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


def decode_event(value: bytes | str | None) -> Event:
    """Parse one record value into its event model.

    Raises:
        DecodeError: the value is empty, not JSON, of an unknown type, or fails validation; the
            message names every offending field.
    """
    if not value:
        raise DecodeError("the record has no value (an event envelope is required)")
    try:
        return _EVENT_ADAPTER.validate_json(value)
    except ValidationError as exc:
        raise DecodeError(_describe(exc)) from exc


def validate_event(document: object) -> Event:
    """Validate an already parsed document (such as one a mapping built) as an event: the same
    checks and messages as :func:`decode_event`.

    Raises:
        DecodeError: the document is not a valid event envelope.
    """
    try:
        return _EVENT_ADAPTER.validate_python(document)
    except ValidationError as exc:
        raise DecodeError(_describe(exc)) from exc


def _describe(exc: ValidationError) -> str:
    problems: list[str] = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"]) or "(document)"
        if error["type"] == "json_invalid":
            return f"not valid JSON: {error['msg']}"
        if error["type"] == "union_tag_invalid":
            tag = error.get("ctx", {}).get("tag")
            return f"unknown event type {tag!r}; expected one of {', '.join(EVENT_TYPES)}"
        if error["type"] == "union_tag_not_found":
            return "the event has no 'type' field"
        if error["type"] in ("model_attributes_type", "model_type") or not error["loc"]:
            return "the record value is not a JSON object"
        message = error["msg"].removeprefix("Value error, ")
        problems.append(f"{where}: {message}")
    shown = "; ".join(problems[:5])
    more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
    return f"invalid event: {shown}{more}"
