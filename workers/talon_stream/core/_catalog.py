"""Catalog sync actions and how product events are batched into sync calls. Pure logic, no I/O.

A product event is one action on one SKU of a Talon.One cart item catalog:

=====================  ===========================================================
``product.upserted``   ``ADD`` with ``replaceIfExists``: the item becomes the event's
``product.updated``    ``PATCH`` with ``createIfNotExists``: only the fields it names change
``product.deleted``    ``REMOVE``
=====================  ===========================================================

Talon.One takes up to 1,000 actions of **one** type per sync call, each SKU at most once, and
refuses the whole call when one ``REMOVE`` names an item it does not hold.
:class:`PendingActions` keeps the actions waiting for the next call, one per SKU: an event of a
SKU that is already waiting is merged into its action (:func:`merge`), so the SKU's events keep
their order and a call never names a SKU twice. Only what merges exactly is merged: an ``ADD``
(the whole item, price included) replaces everything before it, a ``PATCH`` joins an ``ADD`` or
``PATCH`` (or, priced, turns a ``REMOVE`` into an ``ADD``), a ``REMOVE`` a ``REMOVE``. A
``REMOVE`` after an ``ADD`` or ``PATCH``, and an unpriced ``PATCH`` after a ``REMOVE``, wait
behind it for a later call instead: merged, the one would remove an item Talon.One may never
have held, the other would keep a price the ``REMOVE`` dropped.
:meth:`PendingActions.take` picks the next call: up to 1,000 actions of one type, oldest first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from talon_stream.core import _events as events

__all__ = [
    "MAX_ACTIONS",
    "ActionType",
    "CatalogAction",
    "PendingActions",
    "apply",
    "catalog_action",
    "merge",
]

#: The most actions Talon.One takes in one sync call.
MAX_ACTIONS = 1000

ActionType = Literal["ADD", "PATCH", "REMOVE"]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class CatalogAction:
    """One action on one SKU. ``fields``: ``price``, ``attributes`` and ``product`` as the
    event sets them (``ADD``: the whole item; ``PATCH``: what changes; ``REMOVE``: nothing)."""

    type: ActionType
    sku: str
    fields: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """The action as the sync request carries it."""
        payload: dict[str, Any] = {"sku": self.sku, **self.fields}
        if self.type == "ADD":
            payload["replaceIfExists"] = True
        elif self.type == "PATCH":
            payload["createIfNotExists"] = True
        return {"type": self.type, "payload": payload}


def catalog_action(
    event: events.ProductUpserted | events.ProductUpdated | events.ProductDeleted,
) -> CatalogAction:
    """The action a product event stands for."""
    if isinstance(event, events.ProductDeleted):
        return CatalogAction("REMOVE", event.payload.sku)
    payload = event.payload
    fields: dict[str, Any] = {}
    if payload.price is not None:
        fields["price"] = payload.price
    if payload.attributes is not None:
        fields["attributes"] = payload.attributes
    if payload.product is not None:
        fields["product"] = {"name": payload.product.name}
    kind: ActionType = "ADD" if isinstance(event, events.ProductUpserted) else "PATCH"
    return CatalogAction(kind, payload.sku, fields)


def merge(earlier: CatalogAction, later: CatalogAction) -> CatalogAction | None:
    """One action that leaves the SKU exactly as ``earlier`` then ``later`` would, whatever
    Talon.One held before; ``None`` when there is none.

    An ``ADD`` says the whole item, so it wins. A ``PATCH`` on an ``ADD`` or ``PATCH`` overrides
    the fields it names (attributes key by key); on a ``REMOVE`` it creates the item from its own
    fields, which an ``ADD`` says when the ``PATCH`` has a price. Two ``REMOVE`` are one.
    """
    if later.type == "ADD":
        return later
    if later.type == "REMOVE":
        return later if earlier.type == "REMOVE" else None
    if earlier.type == "REMOVE":
        # Created again from the PATCH's own fields: an ADD says that when it has the price.
        return CatalogAction("ADD", later.sku, later.fields) if "price" in later.fields else None
    fields = {**earlier.fields, **later.fields}
    if "attributes" in earlier.fields and "attributes" in later.fields:
        fields["attributes"] = {**earlier.fields["attributes"], **later.fields["attributes"]}
    return CatalogAction(earlier.type, later.sku, fields)


def apply(items: dict[str, dict[str, Any]], action: CatalogAction) -> None:
    """What the action does to a catalog (``sku → fields``): the model the batching is tested
    against, and Talon.One's documented behaviour."""
    if action.type == "REMOVE":
        items.pop(action.sku, None)
    elif action.type == "ADD":
        items[action.sku] = dict(action.fields)
    else:
        current = items.get(action.sku, {})
        attributes = {**current.get("attributes", {}), **action.fields.get("attributes", {})}
        items[action.sku] = {**current, **action.fields}
        if attributes or "attributes" in current or "attributes" in action.fields:
            items[action.sku]["attributes"] = attributes


@dataclass(slots=True)
class _Step(Generic[T]):
    action: CatalogAction
    #: What the caller waits with: one per event merged into the action, in order.
    tokens: list[T]


class PendingActions(Generic[T]):
    """The actions waiting for the next sync calls of one catalog: per SKU, the actions to
    send one after the other, each with the tokens (records) it stands for. Only the first of a
    SKU's actions may go in the next call."""

    def __init__(self) -> None:
        self._by_sku: dict[str, list[_Step[T]]] = {}
        #: How many actions of each type the next call may take.
        self.counts: dict[ActionType, int] = {"ADD": 0, "PATCH": 0, "REMOVE": 0}

    def __len__(self) -> int:
        return len(self._by_sku)

    def add(self, action: CatalogAction, token: T) -> ActionType:
        """Queue ``action`` for ``token``: merged into the SKU's last waiting action, or behind
        it; return the type of the SKU's first waiting action."""
        steps = self._by_sku.get(action.sku)
        if steps is None:
            self._by_sku[action.sku] = [_Step(action, [token])]
            self.counts[action.type] += 1
            return action.type
        first = steps[0].action.type
        if action.type == "ADD":  # the whole item: what waited before it is overtaken
            tokens = [t for step in steps for t in step.tokens]
            steps[:] = [_Step(action, [*tokens, token])]
        else:
            merged = merge(steps[-1].action, action)
            if merged is None:
                steps.append(_Step(action, [token]))
            else:
                steps[-1].action = merged
                steps[-1].tokens.append(token)
        if steps[0].action.type != first:
            self.counts[first] -= 1
            self.counts[steps[0].action.type] += 1
        return steps[0].action.type

    def oldest_type(self) -> ActionType | None:
        """The type of the action that has waited longest."""
        for steps in self._by_sku.values():  # a dict keeps the order SKUs started waiting
            return steps[0].action.type
        return None

    def take(
        self, limit: int = MAX_ACTIONS, kind: ActionType | None = None
    ) -> list[tuple[CatalogAction, list[T]]]:
        """The next call's actions: up to ``limit`` of type ``kind`` (default: the type of the
        oldest waiting action), oldest first; they wait no more, and the SKUs' next actions
        may go in the next call."""
        kind = kind or self.oldest_type()
        out: list[tuple[CatalogAction, list[T]]] = []
        if kind is None or not self.counts[kind]:
            return out
        behind: list[list[_Step[T]]] = []
        for sku, steps in list(self._by_sku.items()):
            if steps[0].action.type == kind:
                out.append((steps[0].action, steps[0].tokens))
                del self._by_sku[sku]
                if len(steps) > 1:
                    behind.append(steps[1:])
                if len(out) == limit:
                    break
        self.counts[kind] -= len(out)
        for steps in behind:
            self._by_sku[steps[0].action.sku] = steps
            self.counts[steps[0].action.type] += 1
        return out
