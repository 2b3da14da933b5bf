"""A small Confluent Schema Registry for the tests: the REST API that
``confluent_kafka.schema_registry.SchemaRegistryClient`` calls, over real HTTP on loopback.

What it implements, as the registry does (same paths, bodies, status and error codes):

* ``POST /subjects/{subject}/versions`` — register: the same schema again gives its id back; a
  new one is checked against the subject's compatibility level (``BACKWARD`` by default, with
  :func:`talon_stream.formats.avro._compat.check_backward`) — 409 when incompatible, 422 (42201)
  when it is
  not a valid Avro schema; ids are global, one per distinct schema;
* ``POST /subjects/{subject}`` — look up: 40401 (no subject), 40403 (no such schema);
* ``GET /schemas/ids/{id}`` (40403), ``/schemas/ids/{id}/subjects``, ``/schemas/ids/{id}/versions``,
  ``/schemas/types``;
* ``GET /subjects``, ``/subjects/{subject}/versions``, ``/subjects/{subject}/versions/{n|latest}``
  (40401, 40402), ``DELETE /subjects/{subject}``;
* ``GET``/``PUT /config`` and ``/config/{subject}`` (40408 without a subject-level level),
  ``POST /compatibility/subjects/{subject}/versions/{n|latest}``, ``GET /mode``;
* HTTP basic authentication when ``users`` are given (401, error code 401).

Test helpers: :attr:`SchemaRegistryServer.requests` logs each request (method, path), and
:meth:`SchemaRegistryServer.fail_next` answers the next requests with an error status.
"""

from __future__ import annotations

import asyncio
import base64
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import fastavro
import orjson
from aiohttp import web

from talon_stream.formats.avro._compat import check_backward

__all__ = ["SchemaRegistryServer", "running_registry"]

_CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
_LEVELS = frozenset(
    (
        "NONE",
        "BACKWARD",
        "BACKWARD_TRANSITIVE",
        "FORWARD",
        "FORWARD_TRANSITIVE",
        "FULL",
        "FULL_TRANSITIVE",
    )
)


class _ApiError(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass
class _Registry:
    schemas: dict[int, tuple[str, str]] = field(default_factory=dict)  # id → (text, type)
    ids: dict[tuple[str, str], int] = field(default_factory=dict)  # (canonical, type) → id
    subjects: dict[str, list[int]] = field(default_factory=dict)  # versions: index + 1
    levels: dict[str, str] = field(default_factory=dict)
    level: str = "BACKWARD"

    def subject(self, name: str) -> list[int]:
        versions = self.subjects.get(name)
        if not versions:
            raise _ApiError(404, 40401, f"Subject '{name}' not found.")
        return versions

    def version(self, name: str, version: str) -> tuple[int, int]:
        versions = self.subject(name)
        if version in ("latest", "-1"):
            return len(versions), versions[-1]
        if not version.isdigit() or not 1 <= int(version) <= len(versions):
            raise _ApiError(404, 40402, f"Version {version} not found.")
        return int(version), versions[int(version) - 1]

    def level_of(self, subject: str) -> str:
        return self.levels.get(subject, self.level)


def _canonical(text: str) -> str:
    return orjson.dumps(orjson.loads(text), option=orjson.OPT_SORT_KEYS).decode()


def _compatible(level: str, new: Any, olds: list[Any]) -> list[str]:
    if level == "NONE" or not olds:
        return []
    checked = olds if level.endswith("_TRANSITIVE") else olds[-1:]
    problems: list[str] = []
    for old in checked:
        if level.startswith(("BACKWARD", "FULL")):
            problems += [f"reading old data: {p}" for p in check_backward(old, new)]
        if level.startswith(("FORWARD", "FULL")):
            problems += [f"old readers: {p}" for p in check_backward(new, old)]
    return problems


class SchemaRegistryServer:
    """The registry on a loopback port, served by its own event loop in a daemon thread."""

    def __init__(self, *, users: dict[str, str] | None = None) -> None:
        self.users = users
        self.registry = _Registry()
        #: Every request: (method, path with its query).
        self.requests: list[tuple[str, str]] = []
        self._failures: list[int] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail_next(self, count: int, status: int = 503) -> None:
        """Answer the next ``count`` requests with ``status`` (an outage, say)."""
        with self._lock:
            self._failures.extend([status] * count)

    def register(self, subject: str, text: str) -> int:
        """Register ``text`` under ``subject`` directly (as another producer would)."""
        with self._lock:
            return self._register(subject, text, "AVRO")

    # --- serving ----------------------------------------------------------------------------

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._main, name="schema-registry", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the Schema Registry emulator did not start")
        return self

    def stop(self) -> None:
        if self._thread is None:
            return
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(10)
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        finally:
            loop.close()

    async def _serve(self) -> None:
        self._stopping = asyncio.Event()
        app = web.Application(middlewares=[self._middleware])
        route = app.router
        route.add_get("/subjects", self._subjects)
        route.add_get("/subjects/{subject}/versions", self._versions)
        route.add_post("/subjects/{subject}/versions", self._register_version)
        route.add_get("/subjects/{subject}/versions/{version}", self._get_version)
        route.add_post("/subjects/{subject}", self._lookup)
        route.add_delete("/subjects/{subject}", self._delete_subject)
        route.add_get("/schemas/types", self._types)
        route.add_get("/schemas/ids/{id}", self._get_schema)
        route.add_get("/schemas/ids/{id}/subjects", self._schema_subjects)
        route.add_get("/schemas/ids/{id}/versions", self._schema_versions)
        route.add_get("/config", self._get_config)
        route.add_put("/config", self._put_config)
        route.add_get("/config/{subject}", self._get_config)
        route.add_put("/config/{subject}", self._put_config)
        route.add_post("/compatibility/subjects/{subject}/versions/{version}", self._check)
        route.add_get("/mode", self._mode)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._ready.set()
        try:
            await self._stopping.wait()
        finally:
            await runner.cleanup()

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        with self._lock:
            self.requests.append((request.method, request.path_qs))
            failure = self._failures.pop(0) if self._failures else None
        try:
            if failure is not None:
                raise _ApiError(failure, failure * 100 + 1, "injected failure")
            self._authenticate(request)
            return await handler(request)
        except _ApiError as exc:
            return _json({"error_code": exc.code, "message": exc.message}, status=exc.status)

    def _authenticate(self, request: web.Request) -> None:
        if self.users is None:
            return
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic "):
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            if self.users.get(user) == password:
                return
        raise _ApiError(401, 401, "Unauthorized")

    # --- handlers ---------------------------------------------------------------------------

    async def _subjects(self, request: web.Request) -> web.Response:
        with self._lock:
            return _json(sorted(self.registry.subjects))

    async def _versions(self, request: web.Request) -> web.Response:
        with self._lock:
            versions = self.registry.subject(request.match_info["subject"])
            return _json(list(range(1, len(versions) + 1)))

    async def _register_version(self, request: web.Request) -> web.Response:
        body = await _body(request)
        text, kind = body.get("schema"), body.get("schemaType", "AVRO")
        if not isinstance(text, str):
            raise _ApiError(422, 42201, "Invalid schema: no schema")
        with self._lock:
            schema_id = self._register(request.match_info["subject"], text, kind)
        return _json({"id": schema_id})

    def _register(self, subject: str, text: str, kind: str) -> int:
        registry = self.registry
        if kind != "AVRO":
            raise _ApiError(422, 42201, f"Invalid schema: {kind} is not supported here")
        try:
            parsed = orjson.loads(text)
            fastavro.parse_schema(parsed)
        except Exception as exc:  # any parse failure is the client's mistake: 422
            raise _ApiError(422, 42201, f"Invalid schema {text}: {exc}") from exc
        key = (_canonical(text), kind)
        versions = registry.subjects.setdefault(subject, [])
        existing = registry.ids.get(key)
        if existing is not None and existing in versions:
            return existing
        olds = [orjson.loads(registry.schemas[old][0]) for old in versions]
        problems = _compatible(registry.level_of(subject), parsed, olds)
        if problems:
            if not versions:
                del registry.subjects[subject]
            raise _ApiError(
                409,
                409,
                "Schema being registered is incompatible with an earlier schema for subject "
                f'"{subject}", details: {problems}',
            )
        if existing is None:
            existing = len(registry.schemas) + 1
            registry.schemas[existing] = (text, kind)
            registry.ids[key] = existing
        versions.append(existing)
        return existing

    async def _get_version(self, request: web.Request) -> web.Response:
        subject = request.match_info["subject"]
        with self._lock:
            version, schema_id = self.registry.version(subject, request.match_info["version"])
            return _json(self._registered(subject, version, schema_id))

    async def _lookup(self, request: web.Request) -> web.Response:
        subject = request.match_info["subject"]
        body = await _body(request)
        with self._lock:
            versions = self.registry.subject(subject)
            key = (_canonical(str(body.get("schema"))), body.get("schemaType", "AVRO"))
            schema_id = self.registry.ids.get(key)
            if schema_id is None or schema_id not in versions:
                raise _ApiError(404, 40403, "Schema not found")
            return _json(self._registered(subject, versions.index(schema_id) + 1, schema_id))

    async def _delete_subject(self, request: web.Request) -> web.Response:
        with self._lock:
            versions = self.registry.subject(request.match_info["subject"])
            del self.registry.subjects[request.match_info["subject"]]
            return _json(list(range(1, len(versions) + 1)))

    async def _types(self, request: web.Request) -> web.Response:
        return _json(["AVRO"])

    async def _get_schema(self, request: web.Request) -> web.Response:
        with self._lock:
            text, kind = self._schema(request.match_info["id"])
        answer: dict[str, Any] = {"schema": text}
        if kind != "AVRO":
            answer["schemaType"] = kind
        return _json(answer)

    async def _schema_subjects(self, request: web.Request) -> web.Response:
        with self._lock:
            schema_id = int(request.match_info["id"])
            self._schema(request.match_info["id"])
            found = [s for s, versions in self.registry.subjects.items() if schema_id in versions]
            return _json(sorted(found))

    async def _schema_versions(self, request: web.Request) -> web.Response:
        with self._lock:
            schema_id = int(request.match_info["id"])
            self._schema(request.match_info["id"])
            return _json(
                [
                    {"subject": subject, "version": versions.index(schema_id) + 1}
                    for subject, versions in sorted(self.registry.subjects.items())
                    if schema_id in versions
                ]
            )

    async def _get_config(self, request: web.Request) -> web.Response:
        subject = request.match_info.get("subject")
        with self._lock:
            if subject is None:
                return _json({"compatibilityLevel": self.registry.level})
            if subject not in self.registry.levels:
                if request.query.get("defaultToGlobal") == "true":
                    return _json({"compatibilityLevel": self.registry.level})
                raise _ApiError(
                    404,
                    40408,
                    f"Subject '{subject}' does not have subject-level compatibility configured",
                )
            return _json({"compatibilityLevel": self.registry.levels[subject]})

    async def _put_config(self, request: web.Request) -> web.Response:
        subject = request.match_info.get("subject")
        level = str((await _body(request)).get("compatibility", "")).upper()
        if level not in _LEVELS:
            raise _ApiError(422, 42203, f"Invalid compatibility level {level!r}")
        with self._lock:
            if subject is None:
                self.registry.level = level
            else:
                self.registry.levels[subject] = level
        return _json({"compatibility": level})

    async def _check(self, request: web.Request) -> web.Response:
        subject = request.match_info["subject"]
        body = await _body(request)
        with self._lock:
            _, schema_id = self.registry.version(subject, request.match_info["version"])
            old = orjson.loads(self.registry.schemas[schema_id][0])
            level = self.registry.level_of(subject)
        problems = _compatible(level, orjson.loads(str(body.get("schema"))), [old])
        answer: dict[str, Any] = {"is_compatible": not problems}
        if request.query.get("verbose") == "true":
            answer["messages"] = problems
        return _json(answer)

    async def _mode(self, request: web.Request) -> web.Response:
        return _json({"mode": "READWRITE"})

    # --- helpers ----------------------------------------------------------------------------

    def _schema(self, raw_id: str) -> tuple[str, str]:
        schema = self.registry.schemas.get(int(raw_id)) if raw_id.isdigit() else None
        if schema is None:
            raise _ApiError(404, 40403, "Schema not found")
        return schema

    def _registered(self, subject: str, version: int, schema_id: int) -> dict[str, Any]:
        text, kind = self.registry.schemas[schema_id]
        answer: dict[str, Any] = {
            "subject": subject,
            "version": version,
            "id": schema_id,
            "schema": text,
        }
        if kind != "AVRO":
            answer["schemaType"] = kind
        return answer


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError as exc:
        raise _ApiError(422, 42201, f"the body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise _ApiError(422, 42201, "the body is not a JSON object")
    return body


def _json(value: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(value), status=status, content_type=_CONTENT_TYPE)


@contextmanager
def running_registry(**options: Any) -> Iterator[SchemaRegistryServer]:
    """A registry for the ``with`` block."""
    with SchemaRegistryServer(**options) as server:
        yield server
