"""A bounded, thread-safe log of every Integration API call the emulator answered.

Tests read it in process (``server.state.request_log``) or over ``GET /__emulator/requests``;
both give the same JSON-shaped entries.

Bodies are kept as the raw JSON bytes the client sent and parsed only when read: a log of
200 000 parsed bodies would be hundreds of thousands of dicts for the garbage collector to scan
on every full collection, which slows the server down as the log fills.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple, TypedDict

import orjson

__all__ = ["DEFAULT_REQUEST_LOG_SIZE", "RequestLog", "RequestLogEntry"]

DEFAULT_REQUEST_LOG_SIZE = 200_000


class _EntryHead(TypedDict):
    """What the log knows of a call before its body."""

    seq: int
    method: str
    path: str
    operation: str | None
    sessionId: str | None
    profileId: str | None
    idempotencyKey: str | None
    query: dict[str, str | list[str]]


class RequestLogEntry(_EntryHead):
    """One answered call. ``operation`` is the SDK's camelCase operation ID (``None`` for 404s);
    ``started``/``ended`` are epoch seconds; ``replayed`` tells an Idempotency-Key replay;
    ``fault`` the injected fault, if any."""

    body: Any
    status: int
    started: float
    ended: float
    replayed: bool
    fault: str | None


class _Stored(NamedTuple):
    # Only atomic values (and a dict of strings): CPython stops tracking such tuples in the GC.
    seq: int
    method: str
    path: str
    operation: str | None
    session_id: str | None
    profile_id: str | None
    idempotency_key: str | None
    query: dict[str, str | list[str]]
    body: bytes | None
    status: int
    started: float
    ended: float
    replayed: bool
    fault: str | None

    def head(self) -> _EntryHead:
        return {
            "seq": self.seq,
            "method": self.method,
            "path": self.path,
            "operation": self.operation,
            "sessionId": self.session_id,
            "profileId": self.profile_id,
            "idempotencyKey": self.idempotency_key,
            "query": self.query,
        }

    def entry(self) -> RequestLogEntry:
        return {
            **self.head(),
            "query": dict(self.query),
            "body": orjson.loads(self.body) if self.body is not None else None,
            "status": self.status,
            "started": self.started,
            "ended": self.ended,
            "replayed": self.replayed,
            "fault": self.fault,
        }

    def json(self) -> bytes:
        # The body is spliced in as sent (it parsed as JSON when it was received).
        head = orjson.dumps(self.head())[:-1]
        tail = orjson.dumps(
            {
                "status": self.status,
                "started": self.started,
                "ended": self.ended,
                "replayed": self.replayed,
                "fault": self.fault,
            }
        )
        body = self.body if self.body is not None else b"null"
        return head + b',"body":' + body + b"," + tail[1:]


class RequestLog:
    """Keeps the last ``maxlen`` entries; ``seq`` keeps counting across :meth:`clear`."""

    def __init__(self, maxlen: int = DEFAULT_REQUEST_LOG_SIZE) -> None:
        self._entries: deque[_Stored] = deque(maxlen=maxlen)
        # The server thread appends while a test thread reads; a plain lock keeps snapshots whole.
        self._lock = threading.Lock()
        self._seq = 0

    def record(
        self,
        *,
        method: str,
        path: str,
        operation: str | None,
        session_id: str | None,
        profile_id: str | None,
        idempotency_key: str | None,
        query: Mapping[str, str | list[str]],
        body: bytes | None,
        status: int,
        started: float,
        ended: float,
        replayed: bool = False,
        fault: str | None = None,
    ) -> int:
        """Append one entry; ``body`` is the raw JSON of the request (``None`` if none or
        malformed), ``replayed`` whether a stored Idempotency-Key answer was sent, ``fault`` the
        injected fault (``outage``, ``error-before``, ``error-after``). Returns the entry's
        ``seq``."""
        with self._lock:
            self._seq += 1
            self._entries.append(
                _Stored(
                    self._seq,
                    method,
                    path,
                    operation,
                    session_id,
                    profile_id,
                    idempotency_key,
                    dict(query),
                    body,
                    status,
                    started,
                    ended,
                    replayed,
                    fault,
                )
            )
            return self._seq

    def _snapshot(self, since: int) -> list[_Stored]:
        with self._lock:
            if since <= 0:
                return list(self._entries)
            return [entry for entry in self._entries if entry.seq > since]

    def entries(self, since: int = 0) -> list[RequestLogEntry]:
        """The entries with ``seq > since``, oldest first, bodies parsed."""
        return [stored.entry() for stored in self._snapshot(since)]

    def to_json(self, since: int = 0) -> bytes:
        """:meth:`entries` as a JSON array, without parsing the stored bodies."""
        return b"[" + b",".join(stored.json() for stored in self._snapshot(since)) + b"]"

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[RequestLogEntry]:
        return iter(self.entries())
