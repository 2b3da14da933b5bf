"""Attributes Talon.One does not know, left out of a request. Pure logic, no I/O.

Talon.One refuses a request that sets a custom attribute its Application does not declare:
400, and for each such attribute an error titled ``Unknown`` whose JSON pointer names it
(``/customerSession/attributes/shoeSize``, ``/customerProfiles/3/attributes/shoeSize``). With
``TALON_STREAM_SKIP_UNKNOWN_ATTRIBUTES`` the worker sends the request again without the
attributes those pointers name (:func:`without_attributes`), as Talon.One's own Segment
destination does with ``skipNonExistingAttributes``. Only an Integration API key is at hand,
which cannot list an Application's attributes, so the 400 is the one faithful source: it is
Talon.One's own verdict, for the Application the key belongs to, at the time of the call.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from talon_stream.core._calls import Operation

__all__ = [
    "attribute_name",
    "dropped_names",
    "retry_key",
    "split_pointer",
    "without_attributes",
]

_NAMESPACE = uuid.UUID("5d0c7a8e-2f4b-4c61-8b9e-7a3e1c2d4f60")

# The entity a top-level ``/attributes/<name>`` belongs to, by operation.
_TOP_LEVEL = {
    Operation.UPDATE_CUSTOMER_PROFILE: "CustomerProfile",
    Operation.TRACK_EVENT: "Event",
    Operation.TRACK_EVENT_V3: "Event",
}


def split_pointer(pointer: str) -> list[str] | None:
    """The segments of a JSON pointer (RFC 6901), unescaped; ``None`` if it is not one."""
    if not pointer.startswith("/"):
        return None
    return [part.replace("~1", "/").replace("~0", "~") for part in pointer[1:].split("/")]


def attribute_name(operation: Operation, pointer: str) -> tuple[str, str] | None:
    """The entity and name of the attribute ``pointer`` names in a request of ``operation``
    (``("CartItem", "color")``), or ``None`` when it names no custom attribute."""
    parts = split_pointer(pointer)
    if parts is None or len(parts) < 2 or parts[-2] != "attributes":
        return None
    name, path = parts[-1], parts[:-2]
    if path == ["customerSession"]:
        return "CustomerSession", name
    if len(path) == 3 and path[0] == "customerSession" and path[1] == "cartItems":
        return "CartItem", name
    if len(path) == 2 and path[0] == "customerProfiles":
        return "CustomerProfile", name
    if not path and operation in _TOP_LEVEL:
        return _TOP_LEVEL[operation], name
    return None


def dropped_names(operation: Operation, pointers: Iterable[str]) -> list[str]:
    """``Entity.name`` of each dropped attribute, once each, in the order first dropped: what
    the effects envelope's ``droppedAttributes`` lists."""
    names: dict[str, None] = {}
    for pointer in pointers:
        found = attribute_name(operation, pointer)
        if found is not None:
            names[f"{found[0]}.{found[1]}"] = None
    return list(names)


def retry_key(key: str, dropped: Iterable[str]) -> str:
    """The Idempotency-Key of a request sent again without the ``dropped`` attributes: derived
    from the first request's key and what was left out, so a replay sends the same key with the
    same body, and never the first key with another body (which Talon.One would refuse)."""
    return str(uuid.uuid5(_NAMESPACE, key + "\0" + "\0".join(sorted(dropped))))


def without_attributes(
    operation: Operation, body: dict[str, Any], pointers: Iterable[str]
) -> tuple[dict[str, Any], list[str]] | None:
    """``body`` without the custom attributes ``pointers`` name, and the pointers it removed;
    ``None`` when none of them names an attribute the body sets (nothing to leave out). The
    body given is not changed: the objects on the way to an attribute are copied."""
    out = dict(body)
    removed: list[str] = []
    for pointer in pointers:
        if attribute_name(operation, pointer) is None:
            continue
        parts = split_pointer(pointer)
        assert parts is not None
        if _remove(out, parts):
            removed.append(pointer)
    return (out, removed) if removed else None


def _remove(node: dict[str, Any], parts: list[str]) -> bool:
    """Remove what ``parts`` lead to under ``node``, copying each container on the way (the
    copies replace the originals in their parents); whether it was there."""
    head, rest = parts[0], parts[1:]
    if not rest:
        if head not in node:
            return False
        del node[head]
        return True
    child = node.get(head)
    if isinstance(child, dict):
        copy: Any = dict(child)
    elif isinstance(child, list) and rest and rest[0].isdigit() and int(rest[0]) < len(child):
        copy = list(child)
        index = int(rest[0])
        item = copy[index]
        if not isinstance(item, dict) or len(rest) < 2:
            return False
        item = dict(item)
        if not _remove(item, rest[1:]):
            return False
        copy[index] = item
        node[head] = copy
        return True
    else:
        return False
    if not _remove(copy, rest):
        return False
    node[head] = copy
    return True
