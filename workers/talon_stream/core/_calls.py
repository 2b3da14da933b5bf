"""A Talon.One call described as data: what translation produces and the client sends."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import quote

__all__ = ["Operation", "TalonCall", "TalonResponse", "customer_digest", "customer_label"]


def customer_digest(integration_id: str) -> str:
    """A one-way name for a customer: what logs, errors and the erasure ledger say instead of
    the integration ID of a customer whose personal data is erased."""
    return hashlib.sha256(b"talon-stream erasure\0" + integration_id.encode()).hexdigest()


def customer_label(integration_id: str) -> str:
    """How logs and messages name an erased customer: ``~`` and the digest's first 12 digits."""
    return "~" + customer_digest(integration_id)[:12]


class Operation(StrEnum):
    """The Integration API operations the worker calls, named by their OpenAPI operation id."""

    UPDATE_CUSTOMER_SESSION = "updateCustomerSessionV2"
    RETURN_CART_ITEMS = "returnCartItems"
    REOPEN_CUSTOMER_SESSION = "reopenCustomerSession"
    UPDATE_CUSTOMER_PROFILE = "updateCustomerProfileV2"
    #: Update multiple customer profiles: ``customer.updated`` without rules, batched
    #: (``talon_stream.core._profiles``).
    UPDATE_CUSTOMER_PROFILES = "updateCustomerProfilesV2"
    TRACK_EVENT = "trackEventV2"
    #: Advanced events: uniquely identified by ``integrationId``, so a replay is a duplicate.
    TRACK_EVENT_V3 = "trackEventV3"
    #: The stored advanced event and its effects (a replayed one's answer, see ``trackEventV3``).
    GET_EVENT_V3 = "getEventV3"
    #: Erasure: the attributes of the profile and of what refers to it, in every Application.
    DELETE_CUSTOMER_DATA = "deleteCustomerData"
    #: Catalog sync: product events, batched (``talon_stream.core._catalog``).
    SYNC_CATALOG = "syncCatalog"
    #: Read only: what Talon.One holds for a session (to tell a late cart update from a bad one).
    GET_CUSTOMER_SESSION = "getCustomerSession"

    @property
    def method(self) -> str:
        return _METHODS[self]

    def path(self, integration_id: str) -> str:
        """The request path, with the integration ID fully percent-encoded (``/`` too)."""
        template = _PATHS[self]
        if _UNRESERVED.fullmatch(integration_id) is None:  # most ids need no encoding at all
            integration_id = quote(integration_id, safe="")
        return template.format(id=integration_id)


#: What ``quote`` leaves as it is: RFC 3986's unreserved characters.
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*")

_METHODS = {
    Operation.UPDATE_CUSTOMER_SESSION: "PUT",
    Operation.RETURN_CART_ITEMS: "POST",
    Operation.REOPEN_CUSTOMER_SESSION: "PUT",
    Operation.UPDATE_CUSTOMER_PROFILE: "PUT",
    Operation.UPDATE_CUSTOMER_PROFILES: "PUT",
    Operation.TRACK_EVENT: "POST",
    Operation.TRACK_EVENT_V3: "POST",
    Operation.GET_EVENT_V3: "GET",
    Operation.DELETE_CUSTOMER_DATA: "DELETE",
    Operation.SYNC_CATALOG: "PUT",
    Operation.GET_CUSTOMER_SESSION: "GET",
}

_PATHS = {
    Operation.UPDATE_CUSTOMER_SESSION: "/v2/customer_sessions/{id}",
    Operation.RETURN_CART_ITEMS: "/v2/customer_sessions/{id}/returns",
    Operation.REOPEN_CUSTOMER_SESSION: "/v2/customer_sessions/{id}/reopen",
    Operation.UPDATE_CUSTOMER_PROFILE: "/v2/customer_profiles/{id}",
    Operation.UPDATE_CUSTOMER_PROFILES: "/v2/customer_profiles",
    Operation.TRACK_EVENT: "/v2/events",
    Operation.TRACK_EVENT_V3: "/v3/events",
    Operation.GET_EVENT_V3: "/v3/events/{id}",
    Operation.DELETE_CUSTOMER_DATA: "/v1/customer_data/{id}",
    Operation.SYNC_CATALOG: "/v1/catalogs/{id}/sync",
    Operation.GET_CUSTOMER_SESSION: "/v2/customer_sessions/{id}",
}


@dataclass(frozen=True, slots=True)
class TalonCall:
    """One Integration API request.

    ``integration_id`` is the path id (session or profile integration ID); track event has none in
    its path and carries the profile in its body. ``profile_id`` and ``session_id`` are the
    customer's ids this call touches — the lock keys of the scheduler.
    """

    operation: Operation
    integration_id: str
    body: dict[str, Any] | None
    query: dict[str, str] = field(default_factory=dict)
    profile_id: str | None = None
    session_id: str | None = None

    @property
    def method(self) -> str:
        return self.operation.method

    @property
    def path(self) -> str:
        return self.operation.path(self.integration_id)

    @property
    def loggable_profile_id(self) -> str | None:
        """The profile ID as logs may show it: by digest for an erasure."""
        if self.profile_id is not None and self.operation is Operation.DELETE_CUSTOMER_DATA:
            return customer_label(self.profile_id)
        return self.profile_id

    def describe(self) -> str:
        """Short and readable, e.g. ``updateCustomerSessionV2 PUT /v2/customer_sessions/s1``.
        An erasure names its customer by digest only (``customer_data/~3f2a9c01``)."""
        if self.operation is Operation.DELETE_CUSTOMER_DATA:
            path = "/v1/customer_data/" + customer_label(self.integration_id)
            return f"{self.operation.value} {self.method} {path}"
        return f"{self.operation.value} {self.method} {self.path}"


@dataclass(frozen=True, slots=True)
class TalonResponse:
    """A successful answer. ``body`` is the parsed JSON (empty for 204)."""

    status: int
    body: dict[str, Any]
    elapsed_s: float
    #: JSON pointers of the attributes left out of the request because Talon.One does not know
    #: them (``TALON_STREAM_SKIP_UNKNOWN_ATTRIBUTES``; ``talon_stream.core._attributes``).
    dropped: tuple[str, ...] = ()
    #: The answer's ``effects`` (``[]`` when it has none), read once.
    effects: list[Any] = field(init=False)

    def __post_init__(self) -> None:
        effects = self.body.get("effects")
        object.__setattr__(self, "effects", effects if isinstance(effects, list) else [])
