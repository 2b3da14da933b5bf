"""The Schema Registry, through ``confluent_kafka.schema_registry``: the client, and the writer
schemas of input records by id.

Decoding a record (:meth:`~talon_stream.processing.RecordProcessor.prepare`) is CPU work on the
event
loop and must not wait for HTTP. So the worker asks :meth:`WriterSchemas.fetch` — on a thread —
for the ids of a fetched batch that it has not seen yet *before* it hands the batch on; decoding
then finds every writer schema here, already parsed. The client caches what it fetched too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import fastavro
import orjson
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError
from fastavro.schema import SchemaParseException

from talon_stream.formats.avro._errors import RegistryError

__all__ = [
    "SCHEMA_NOT_FOUND",
    "WriterSchema",
    "WriterSchemas",
    "registry_client",
    "translate_error",
]

log = logging.getLogger(__name__)

#: The registry's error codes for "no such schema id" and "no such subject / version".
SCHEMA_NOT_FOUND = frozenset((40403, 40401, 40402))


def registry_client(
    url: str, *, basic_auth: str | None = None, timeout_s: float = 10.0
) -> SchemaRegistryClient:
    """A client of the registry at ``url`` (``mock://…``: confluent-kafka's in-memory mock),
    authenticating with ``basic_auth`` (``user:password``) when given."""
    conf: dict[str, Any] = {
        "url": url,
        "timeout": timeout_s,
        # A few quick retries of 408/429/5xx and transport errors inside one call; the worker
        # retries a failed fetch itself, with back-off.
        "max.retries": 2,
        "retries.wait.ms": 200,
        "retries.max.wait.ms": 2000,
    }
    if basic_auth:
        conf["basic.auth.user.info"] = basic_auth
    client: SchemaRegistryClient = SchemaRegistryClient.new_client(conf)
    return client


def translate_error(exc: Exception, url: str, doing: str) -> RegistryError:
    """A :class:`RegistryError` saying what failed while ``doing``."""
    if isinstance(exc, SchemaRegistryError):
        return RegistryError(
            f"{doing}: {exc.error_message}",
            url=url,
            status=exc.http_status_code,
            error_code=exc.error_code,
        )
    return RegistryError(f"{doing}: {exc}", url=url)


@dataclass(frozen=True)
class WriterSchema:
    """A writer schema from the registry: its JSON and that parsed by fastavro."""

    schema_id: int
    raw: Any
    parsed: Any


class WriterSchemas:
    """Writer schemas by id: fetched ahead of decoding (:meth:`fetch`), parsed once."""

    def __init__(self, client: SchemaRegistryClient, url: str) -> None:
        self._client = client
        self.url = url
        self._parsed: dict[int, WriterSchema] = {}
        #: Ids the registry does not know (or whose schema is not Avro), with the reason; asked
        #: again with the next batch that has them, so a schema registered late is found.
        self._missing: dict[int, str] = {}

    def get(self, schema_id: int) -> WriterSchema | None:
        """The writer schema of ``schema_id``, or ``None`` when it was not fetched."""
        return self._parsed.get(schema_id)

    def missing(self, schema_id: int) -> str:
        """Why ``schema_id`` has no schema here."""
        return self._missing.get(schema_id) or (
            f"schema id {schema_id} was not fetched from the Schema Registry {self.url}"
        )

    def unknown(self, values: Iterable[bytes | None]) -> set[int]:
        """The schema ids of the Confluent wire format ``values`` that are not here yet."""
        parsed = self._parsed
        ids: set[int] = set()
        for value in values:
            if value is not None and len(value) > 5 and value[0] == 0:
                schema_id = int.from_bytes(value[1:5], "big")
                if schema_id not in parsed:
                    ids.add(schema_id)
        return ids

    async def fetch(self, ids: Iterable[int]) -> None:
        """Fetch and parse the schemas of ``ids`` on a thread. An id the registry does not know
        is remembered as missing (its records go to the DLQ).

        Raises:
            RegistryError: the registry cannot be reached or refused the request (credentials).
        """
        wanted = sorted(set(ids) - set(self._parsed))
        if wanted:
            await asyncio.to_thread(self._fetch, wanted)

    def _fetch(self, ids: list[int]) -> None:
        for schema_id in ids:
            try:
                schema = self._client.get_schema(schema_id)
            except SchemaRegistryError as exc:
                if exc.error_code in SCHEMA_NOT_FOUND or exc.http_status_code == 404:
                    self._missing[schema_id] = (
                        f"the Schema Registry {self.url} has no schema with id {schema_id}"
                    )
                    continue
                raise translate_error(exc, self.url, f"fetching schema id {schema_id}") from exc
            except Exception as exc:  # the HTTP client's transport errors: translated, re-raised
                raise translate_error(exc, self.url, f"fetching schema id {schema_id}") from exc
            if (schema.schema_type or "AVRO") != "AVRO" or schema.schema_str is None:
                self._missing[schema_id] = (
                    f"schema id {schema_id} is a {schema.schema_type} schema, not Avro"
                )
                continue
            try:
                raw = orjson.loads(schema.schema_str)
                self._parsed[schema_id] = WriterSchema(schema_id, raw, fastavro.parse_schema(raw))
            except (orjson.JSONDecodeError, SchemaParseException, ValueError, TypeError) as exc:
                self._missing[schema_id] = (
                    f"schema id {schema_id} is not a valid Avro schema: {exc}"
                )
                continue
            self._missing.pop(schema_id, None)
            log.info("schema id %d fetched from the Schema Registry", schema_id)
