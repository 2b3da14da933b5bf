"""``Idempotency-Key`` replay, as Talon.One documents it for its newer API versions.

A request with the header, to one of the operations that support it (update session, return
cart items, reopen session, update profile, update multiple profiles, track event), is processed
once; any later request with the same key within the time to live (24 hours) gets the stored
answer (same status, same body) and changes nothing.

Rules the documentation leaves open, decided here:

* the key is compared for the whole Application (every API key), up to 255 characters;
* the stored answer belongs to one request: method, path, query string and JSON body (compared
  as parsed JSON, so key order and spacing do not matter). The same key with another request is
  a client error: **400** "The submitted data was invalid" pointing at the ``Idempotency-Key``
  parameter, and nothing is processed. (Stripe and the IETF draft answer 422; Talon.One's
  Integration API declares no 422, and 409 would make clients retry a request that can never
  succeed.)
* only processed requests are stored: answers from the operation (2xx, and 4xx such as an
  illegal state transition). A 409 (per-ID concurrency limit), an injected fault answered
  before processing, or an internal error stores nothing, so a retry is processed;
* a second request with a key whose first request is still running waits for it and replays.

Memory is bounded: at most ``capacity`` answers are kept (the oldest go first), each for ``ttl``
seconds of the injectable monotonic ``clock``.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from talon_one_emulator.errors import ApiErrorDetail, InvalidDataError

__all__ = [
    "DEFAULT_IDEMPOTENCY_CAPACITY",
    "DEFAULT_IDEMPOTENCY_TTL",
    "IDEMPOTENCY_HEADER",
    "MAX_KEY_LENGTH",
    "IdempotencyStore",
    "StoredResponse",
    "check_key",
    "fingerprint",
]

IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
DEFAULT_IDEMPOTENCY_TTL = 24 * 60 * 60.0
DEFAULT_IDEMPOTENCY_CAPACITY = 100_000


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """The answer replayed for a key: status and exact body bytes (``None`` for 204)."""

    status: int
    body: bytes | None
    fingerprint: bytes
    expires: float


class _Pending:
    __slots__ = ("done", "fingerprint")

    def __init__(self, fingerprint: bytes) -> None:
        self.fingerprint = fingerprint
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()


def _parameter_error(title: str, details: str) -> InvalidDataError:
    return InvalidDataError((ApiErrorDetail(title, details, parameter=IDEMPOTENCY_HEADER),))


def check_key(key: str) -> str:
    """The key if it is usable.

    Raises:
        InvalidDataError: the key is empty or longer than 255 characters.
    """
    if not key:
        raise _parameter_error("minLength", f"{IDEMPOTENCY_HEADER} must not be empty")
    if len(key) > MAX_KEY_LENGTH:
        raise _parameter_error(
            "maxLength", f"{IDEMPOTENCY_HEADER} must have at most {MAX_KEY_LENGTH} characters"
        )
    return key


def fingerprint(method: str, path: str, query: str, body: Any) -> bytes:
    """What identifies a request for replay: method, raw path, query string and parsed body."""
    canonical = orjson.dumps(body, option=orjson.OPT_SORT_KEYS) if body is not None else b""
    digest = hashlib.blake2b(digest_size=16)
    for part in (method.encode(), path.encode(), query.encode(), canonical):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.digest()


class IdempotencyStore:
    """Stored answers per ``Idempotency-Key``, bounded in number and age.

    Used from the server's event loop only.

    Args:
        ttl: seconds an answer is replayed (Talon.One: 24 hours).
        capacity: answers kept at most; the oldest are dropped first.
        clock: monotonic seconds (injectable for tests).
    """

    def __init__(
        self,
        ttl: float = DEFAULT_IDEMPOTENCY_TTL,
        capacity: int = DEFAULT_IDEMPOTENCY_CAPACITY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl <= 0 or capacity < 1:
            raise ValueError("ttl must be > 0 and capacity >= 1")
        self.ttl = ttl
        self.capacity = capacity
        self._clock = clock
        self._stored: OrderedDict[str, StoredResponse] = OrderedDict()
        self._pending: dict[str, _Pending] = {}

    def __len__(self) -> int:
        return len(self._stored)

    def lookup(self, key: str, request: bytes) -> StoredResponse | asyncio.Future[None] | None:
        """What to do with a request carrying ``key`` (``request`` is its :func:`fingerprint`).

        Returns the stored answer to replay; or a future to await while the key's first request
        runs (then look up again); or ``None``: the caller now owns the key and must call
        :meth:`complete` or :meth:`abandon`.

        Raises:
            InvalidDataError: the key belongs to a different request.
        """
        self._expire()
        stored = self._stored.get(key)
        if stored is not None:
            self._check_same(key, stored.fingerprint, request)
            return stored
        pending = self._pending.get(key)
        if pending is not None:
            self._check_same(key, pending.fingerprint, request)
            return pending.done
        self._pending[key] = _Pending(request)
        return None

    def complete(self, key: str, status: int, body: bytes | None) -> StoredResponse:
        """Store the answer of the key's (owned) request and wake up those waiting for it."""
        pending = self._pending.pop(key)
        stored = StoredResponse(status, body, pending.fingerprint, self._clock() + self.ttl)
        self._stored[key] = stored
        while len(self._stored) > self.capacity:
            self._stored.popitem(last=False)
        pending.done.set_result(None)
        return stored

    def abandon(self, key: str) -> None:
        """Forget an owned key without an answer (not processed); waiters look up again."""
        pending = self._pending.pop(key, None)
        if pending is not None and not pending.done.done():
            pending.done.set_result(None)

    def clear(self) -> None:
        """Forget every stored answer (requests in flight still complete)."""
        self._stored.clear()

    def _expire(self) -> None:
        # Every answer lives equally long, so insertion order is expiry order.
        now = self._clock()
        stored = self._stored
        while stored:
            key, oldest = next(iter(stored.items()))
            if oldest.expires > now:
                break
            del stored[key]

    @staticmethod
    def _check_same(key: str, known: bytes, request: bytes) -> None:
        if known != request:
            raise _parameter_error(
                "Invalid",
                f'The {IDEMPOTENCY_HEADER} "{key}" was already used for a different request '
                "(another method, path, query or body); use a new key for a new request.",
            )
