"""The worker: one consumer-group member that turns input records into Talon.One calls.

The loop fetches records on the consumer thread, hands them to the dispatcher, pauses and resumes
partitions as their buffers fill and drain, and commits — every ``commit_interval_s`` (sent
without holding the consumer, counted once the broker answered), on revoke and on shutdown —
only offsets below which every record has an acknowledged outcome, with the finished offsets
above them in the commit's metadata.

With exactly-once processing the outcomes go out in Kafka transactions
(:class:`~talon_stream.kafka.TransactionalSink`) and the offsets are committed in them, every
``transaction_interval_ms``, on revoke and on shutdown; a partition lost without a revoke, or a
transaction that fails, stops the worker (its records are read again from the last commit).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import httpx
from confluent_kafka import KafkaException, Producer

from talon_stream._exceptions import BrokerError, ConfigurationError
from talon_stream._version import __version__
from talon_stream.config._settings import DEFAULT_APPLICATION, Settings
from talon_stream.core._records import PartitionKey
from talon_stream.formats.mapping._mappings import Mappings, load_mappings
from talon_stream.kafka._consumer import AsyncConsumer
from talon_stream.kafka._producer import AsyncProducer
from talon_stream.kafka._tail import TopicTail
from talon_stream.kafka._transactions import TransactionalSink
from talon_stream.ops._health import HealthServer, WorkerStatus
from talon_stream.ops._metrics import MetricsSnapshot, WorkerCollector, render
from talon_stream.ops._stats import WorkerStats
from talon_stream.processing._catalog import CatalogSync
from talon_stream.processing._dispatch import Dispatcher, KeyedDispatcher, PartitionSerialDispatcher
from talon_stream.processing._processor import RecordProcessor
from talon_stream.processing._profiles import ProfileBulk
from talon_stream.scheduling._merge import EventTimeMerge, co_partitioned_groups
from talon_stream.scheduling._offsets import CommitPoint
from talon_stream.scheduling._replay import Resume
from talon_stream.talon._applications import Application, Halts
from talon_stream.talon._client import TalonClient
from talon_stream.talon._halt import Halt
from talon_stream.talon._keys import ApiKeyFile, StaticApiKey, api_key_source
from talon_stream.talon._limits import AdaptiveConcurrency, RateLimiter
from talon_stream.talon._proxy import Proxy, proxy_for
from talon_stream.talon._tls import client_ssl_context

if TYPE_CHECKING:  # the Schema Registry client is imported only when a topic is Avro
    from talon_stream.formats.avro.formats import AvroFormats

__all__ = ["Worker"]

log = logging.getLogger(__name__)

_FETCH_BATCH = 500
_FETCH_WAIT_S = 0.1
#: The fetch wait while records wait to run with coalescing on: a coalesced call starts after
#: the commit that lists it, made by this loop between fetches.
_COALESCING_WAIT_S = 0.01
#: The least time between two commits made for calls that wait for one.
_COMMIT_RETRY_S = 0.05
#: How long a commit sent without waiting may go unanswered before the next one is sent anyway
#: (librdkafka answers every one, with an error at worst).
_COMMIT_ANSWER_S = 30.0
_METADATA_TIMEOUT_S = 10.0


class Worker:
    """Runs until :meth:`stop` is called or a fatal error occurs (which :meth:`run` raises)."""

    def __init__(
        self,
        settings: Settings,
        *,
        stats: WorkerStats | None = None,
        http_transport: httpx.AsyncBaseTransport | None = None,
        consumer_factory: Callable[[dict[str, Any]], Any] | None = None,
        producer_factory: Callable[[dict[str, Any]], Any] | None = None,
    ) -> None:
        self.settings = settings
        self.stats = stats or WorkerStats()
        #: Each Application's API key (a key file is re-read while the worker runs), its TLS
        #: context and proxies: checked now, so a missing file stops the worker at start-up.
        self.api_keys = {
            name: _key_source(settings, name)
            for name in (DEFAULT_APPLICATION, *settings.applications)
        }
        self._ssl_context = client_ssl_context(
            ca_file=settings.talon_ca_file,
            cert_file=settings.talon_client_cert_file,
            key_file=settings.talon_client_key_file,
        )
        self._proxies = {
            url: _proxy(settings, url)
            for url in {settings.application_endpoint(name)[0] for name in self.api_keys}
        }
        self._http_transport = http_transport
        self._consumer_factory = consumer_factory
        self._producer_factory = producer_factory
        self._stopping = asyncio.Event()
        self._has_partitions = asyncio.Event()
        self.assigned: set[PartitionKey] = set()
        #: The offsets this worker last committed (next offset to read) and what it paused.
        self.committed: dict[PartitionKey, int] = {}
        self._paused: set[PartitionKey] = set()
        #: The first commit that listed coalesced calls, until read back (``_check_groups_kept``).
        self._groups_unchecked: PartitionKey | None = None
        self._groups_checked = False
        #: When the commit sent and not answered yet was sent (loop time), if one is.
        self._commit_sent_at: float | None = None
        #: Counts assignments and revokes: a commit answered after one is not marked.
        self._generation = 0
        #: Partitions (re)assigned since the loop last looked: a partition paused before it was
        #: lost can come back still paused in librdkafka, so each is resumed once.
        self._fresh: set[PartitionKey] = set()
        #: Set while Talon.One refuses the key or cannot be reached (see talon_stream.talon._halt).
        self.halt = self._new_halt()
        #: The other Applications' halts (by name); the worker as a whole is halted — paused,
        #: unhealthy — only while every Application is (``halts``).
        self.application_halts = {name: self._new_halt() for name in settings.applications}
        self.halts: Halt | Halts = (
            Halts({DEFAULT_APPLICATION: self.halt, **self.application_halts})
            if self.application_halts
            else self.halt
        )
        self._health: HealthServer | None = None
        #: The transactional sink while the worker runs with exactly-once processing.
        self.transactions: TransactionalSink | None = None
        #: The request-rate cap and the adaptive in-flight limit (``None`` when off).
        self.rate = _rate_limiter(settings)
        self.concurrency = _adaptive_concurrency(settings)
        #: The mapping file, read and checked now: a broken one stops the worker at start-up.
        self.mappings = _mappings(settings)
        #: The Avro topics' decoders and encoders (``None``: every topic is JSON); a topic made
        #: Avro without a Schema Registry URL stops the worker here.
        self.avro = _avro(settings)

    def _new_halt(self) -> Halt:
        settings = self.settings
        return Halt(
            probe_initial_s=settings.halt_probe_initial_s, probe_max_s=settings.halt_probe_max_s
        )

    @property
    def health_port(self) -> int | None:
        """The port of the health endpoint once it listens (``None`` when it is off)."""
        return self._health.port if self._health is not None else None

    async def wait_until_assigned(self) -> None:
        """Return once the group has given this worker its first partitions."""
        await self._has_partitions.wait()

    def stop(self) -> None:
        """Ask the worker to finish its in-flight records, commit and return from :meth:`run`."""
        self._stopping.set()

    async def run(self) -> None:
        """Consume until stopped.

        A refused API key or an unreachable Talon.One does not end the run: the worker halts
        (:attr:`halt`), pauses consumption and probes until calls succeed again.

        Raises:
            BrokerError: Kafka refused the worker's output records.
            OSError: the health endpoint's port cannot be bound.
        """
        settings = self.settings
        consumer_kwargs = {"factory": self._consumer_factory} if self._consumer_factory else {}
        producer = AsyncProducer(
            settings.producer_config(), factory=self._producer_factory or Producer
        )
        transactions = TransactionalSink(producer) if settings.exactly_once else None
        self.transactions = transactions
        talon = self._talon_client()
        applications = self._applications()
        watchers = [
            asyncio.get_running_loop().create_task(key.watch(), name=f"api key file of {name}")
            for name, key in self.api_keys.items()
            if isinstance(key, ApiKeyFile)
        ]
        processor = RecordProcessor.from_settings(
            settings,
            talon,
            transactions or producer,
            stats=self.stats,
            halt=self.halt,
            rate=self.rate,
            concurrency=self.concurrency,
            mappings=self.mappings,
            avro=self.avro,
            applications=applications,
        )
        dispatcher: Dispatcher
        if settings.dispatch == "keyed":
            dispatcher = KeyedDispatcher(
                processor,
                max_in_flight=settings.max_in_flight,
                max_buffered_per_partition=settings.max_buffered_per_partition,
                halt=self.halts,
                concurrency=self.concurrency,
                coalesce=settings.coalesce_cart_updates,
            )
        else:
            dispatcher = PartitionSerialDispatcher(
                processor.process,
                max_buffered_per_partition=settings.max_buffered_per_partition,
                halt=self.halts,
            )
        consumer = AsyncConsumer(settings.consumer_config(), **consumer_kwargs)
        erasures = processor.erasures
        tail = (
            None
            if erasures is None
            else TopicTail(settings.reader_config(), erasures.topic, erasures.load)
        )

        async def on_assign(
            partitions: list[PartitionKey], resumes: dict[PartitionKey, Resume]
        ) -> None:
            log.info("assigned %s", _describe(partitions))
            if tail is not None and partitions:
                # The erasures their last owner made are known before any record runs.
                try:
                    await tail.catch_up(_METADATA_TIMEOUT_S * 3)
                except BrokerError as exc:
                    if dispatcher.failure is None:
                        dispatcher.failure = exc
                    self._stopping.set()
            finished = sum(len(resume.finished) for resume in resumes.values())
            if finished:
                log.info(
                    "%d records above the committed offsets already have their outcome", finished
                )
            self.assigned.update(partitions)
            self._generation += 1
            self._paused.difference_update(partitions)
            self._fresh.update(partitions)
            dispatcher.assign(partitions, resumes)
            if partitions:
                self._has_partitions.set()

        async def on_revoke(
            partitions: list[PartitionKey], group_metadata: Any
        ) -> dict[PartitionKey, CommitPoint]:
            log.info("revoked %s", _describe(partitions))
            self.assigned.difference_update(partitions)
            self._generation += 1
            self._paused.difference_update(partitions)
            if transactions is None:
                return await dispatcher.revoke(partitions, settings.drain_timeout_s)
            await dispatcher.drain(partitions, settings.drain_timeout_s)
            async with transactions.quiet():
                released = await dispatcher.release(partitions)
                await self._commit_transaction(transactions, dispatcher, group_metadata, released)
            return {}  # committed in the transaction

        async def on_lost(
            partitions: list[PartitionKey], group_metadata: Any
        ) -> dict[PartitionKey, CommitPoint]:
            if transactions is None:
                return await on_revoke(partitions, group_metadata)
            log.error("lost %s without a revoke", _describe(partitions))
            self.assigned.difference_update(partitions)
            async with transactions.quiet():
                await dispatcher.release(partitions)
                await transactions.abort()
            if dispatcher.failure is None:
                dispatcher.failure = BrokerError(
                    f"partitions lost without a revoke ({_describe(partitions)}): the open "
                    "transaction was aborted; the worker stops so its records are read again "
                    "from the last committed offsets"
                )
            return {}

        try:
            if settings.health_port is not None:
                await self._start_health(
                    settings.health_host, settings.health_port, consumer, dispatcher
                )
            if self.avro is not None:
                await self.avro.start()  # registers the output schemas: fails fast
            if transactions is not None:
                await transactions.start()
            dispatcher.merge = await self._event_time_merge(consumer)
            if dispatcher.merge is not None:
                dispatcher.merge.held = self._paused  # the same set, kept up to date here
            if self._stopping.is_set():
                return
            await consumer.subscribe(
                settings.input_topics, on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost
            )
            log.info(
                "consuming %s as group %r → %s (DLQ %s), %s",
                ", ".join(settings.input_topics),
                settings.group_id,
                settings.effects_topic,
                settings.dlq_topic,
                settings.processing_guarantee,
            )
            await self._loop(consumer, dispatcher, processor.catalogs, processor.profiles)
        finally:
            # close() leaves the group: the revoke callback finishes in-flight records (bounded)
            # and commits what is finished.
            await consumer.close()
            if self._health is not None:
                await self._health.close()
            await dispatcher.close(0)  # cancel whatever outlived the drain timeout
            await processor.catalogs.close()
            await processor.profiles.close()
            if transactions is not None:
                await transactions.close()
            await producer.close()
            for watcher in watchers:
                watcher.cancel()
            await asyncio.gather(*watchers, return_exceptions=True)
            await talon.aclose()
            for application in applications.values():
                await application.talon.aclose()
            if tail is not None:
                tail.close()
            if self.avro is not None:
                self.avro.close()
        if dispatcher.failure is not None:
            raise dispatcher.failure

    async def _start_health(
        self, host: str, port: int, consumer: AsyncConsumer, dispatcher: Dispatcher
    ) -> None:
        async def metrics() -> bytes:
            snapshot = MetricsSnapshot(
                in_flight=dispatcher.in_flight,
                in_flight_limit=(
                    self.concurrency.limit
                    if self.concurrency is not None
                    else self.settings.max_in_flight
                ),
                buffered=dispatcher.buffered,
                paused_partitions=len(self._paused),
                committed=dict(self.committed),
                high_watermarks=await consumer.high_watermarks(self.assigned),
                skipped=dispatcher.skipped,
                transactions=(
                    None
                    if (sink := self.transactions) is None
                    else (sink.committed, sink.aborted, sink.commit_seconds)
                ),
            )
            return render(
                WorkerCollector(
                    self.stats,
                    self.halts,
                    lambda: snapshot,
                    applications={DEFAULT_APPLICATION: self.halt, **self.application_halts}
                    if self.application_halts
                    else None,
                )
            )

        status = WorkerStatus(
            self.halts, lambda: len(self.assigned), self._stopping.is_set, metrics
        )
        self._health = HealthServer(status, host, port)
        await self._health.start()
        log.info(
            "health endpoint on http://%s:%d (/healthz, /readyz, /metrics)", host, self._health.port
        )

    def _applications(self) -> dict[str, Application]:
        """The Applications besides the default one, each with its own client and halt."""
        settings = self.settings
        return {
            name: Application(
                name,
                self._talon_client(name),
                self.application_halts[name],
                RateLimiter(app.max_requests_per_s, burst=settings.rate_burst)
                if app.max_requests_per_s is not None
                else None,
                app.catalog_id,
            )
            for name, app in settings.applications.items()
        }

    def _talon_client(self, application: str = DEFAULT_APPLICATION) -> TalonClient:
        settings = self.settings
        base_url = settings.application_endpoint(application)[0]
        return TalonClient(
            base_url,
            self.api_keys[application],
            http_client=settings.http_client,
            timeout_s=settings.request_timeout_s,
            max_connections=settings.max_connections,
            user_agent=f"talon-stream/{__version__}",
            ssl_context=self._ssl_context,
            httpx_transport=self._http_transport,
            proxy=self._proxies[base_url],
        )

    async def _event_time_merge(self, consumer: AsyncConsumer) -> EventTimeMerge | None:
        """The merge of the co-partitioned input topics (None when there is nothing to merge);
        reads the topics' partition counts, waiting for the broker as long as it takes."""
        settings = self.settings
        if not settings.merges_topics:
            return None
        while True:
            try:
                counts = await consumer.partition_counts(settings.input_topics, _METADATA_TIMEOUT_S)
                break
            except BrokerError as exc:
                log.warning("%s; retrying", exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), 1.0)
                if self._stopping.is_set():
                    return None
        groups = co_partitioned_groups(counts)
        merged = [group for group in groups if len(group) > 1]
        for group in merged:
            log.info(
                "reading %s in event-time order (%d partitions each; max idle %d ms)",
                ", ".join(group),
                counts[group[0]],
                settings.max_idle_ms,
            )
        alone = [topic for topic in settings.input_topics if not any(topic in g for g in merged)]
        if merged and alone:
            log.warning(
                "%s not co-partitioned with the other input topics (missing, or another "
                "partition count): read in offset order only; `talon-stream config check` shows "
                "the fix",
                ", ".join(alone),
            )
        merge = EventTimeMerge(groups, max_idle_ms=settings.max_idle_ms, clock=_wall_ms)
        return merge if merge.active else None

    async def _loop(
        self,
        consumer: AsyncConsumer,
        dispatcher: Dispatcher,
        catalogs: CatalogSync,
        profiles: ProfileBulk | None = None,
    ) -> None:
        loop = asyncio.get_running_loop()
        transactions = self.transactions
        interval_s = (
            self.settings.transaction_interval_ms / 1000
            if transactions is not None
            else self.settings.commit_interval_s
        )
        next_commit = loop.time() + interval_s
        coalescing = self.settings.coalesce_cart_updates
        retry_at = 0.0
        while not self._stopping.is_set() and dispatcher.failure is None:
            # Waiting for records never delays a commit past its time (the interval of a
            # transaction is shorter than the fetch wait, and every partition may be paused).
            wait_s = min(_FETCH_WAIT_S, max(0.0, next_commit - loop.time()))
            if coalescing and dispatcher.buffered:
                wait_s = min(wait_s, _COALESCING_WAIT_S)
            merge = dispatcher.merge
            if merge is not None and merge.buffered and (due := merge.next_deadline()) is not None:
                wait_s = min(wait_s, max(0.0, (due - _wall_ms()) / 1000))
            records = await consumer.consume(_FETCH_BATCH, wait_s)
            # A full batch: a backlog is being read, so product events wait for fuller calls.
            catalogs.draining = len(records) >= _FETCH_BATCH
            if profiles is not None:
                profiles.draining = catalogs.draining
            avro = self.avro
            if (
                avro is not None
                and records
                and not await avro.prefetch(records, stopping=self._stopping.is_set)
            ):
                break  # stopping while the Schema Registry is down: the batch is read again
            if self._fresh:
                fresh, self._fresh = [k for k in self._fresh if k in self.assigned], set()
                await consumer.resume(fresh)
            for record in records:
                dispatcher.submit(record)
            if merge is not None and merge.buffered:
                empty = merge.waiting_on()
                behind = await consumer.behind(empty) if empty else set()
                dispatcher.release_merged(behind.__contains__, empty)
            pause = dispatcher.partitions_to_pause()
            if pause:
                await consumer.pause(pause)
                self._paused.update(pause)
            resume = dispatcher.partitions_to_resume()
            if resume:
                await consumer.resume(resume)
                self._paused.difference_update(resume)
            now = loop.time()
            # Calls waiting for a commit (coalesced ones, a partition's first) get one at once;
            # again after a pause if it failed (say during a rebalance).
            if now >= next_commit or (dispatcher.wants_commit and now >= retry_at):
                # The next one is due an interval after this one started, not after it ended.
                next_commit = now + interval_s
                if transactions is None:
                    await self._commit(consumer, dispatcher)
                else:
                    await self._commit_periodically(transactions, consumer, dispatcher)
                retry_at = now + _COMMIT_RETRY_S
                if self._groups_unchecked is not None:
                    await self._check_groups_kept(consumer, dispatcher)
        if dispatcher.failure is not None:
            log.error("stopping: %s", dispatcher.failure)

    async def _commit(self, consumer: AsyncConsumer, dispatcher: Dispatcher) -> None:
        """Send the commit of what is finished without waiting for the broker (the loop goes on
        fetching); the offsets count as committed once it answered (:meth:`_committed`). One
        at a time: the next one goes once this one is answered."""
        now = asyncio.get_running_loop().time()
        if self._commit_sent_at is not None and now - self._commit_sent_at < _COMMIT_ANSWER_S:
            return
        points = dispatcher.committable()
        if not points:
            return
        generation = self._generation

        def answered(points: dict[PartitionKey, CommitPoint], taken: set[PartitionKey]) -> None:
            self._commit_sent_at = None
            if generation == self._generation:  # else a rebalance came between: mark nothing
                self._committed(dispatcher, points, taken)

        if await consumer.commit_soon(points, answered):
            self._commit_sent_at = now

    def _committed(
        self,
        dispatcher: Dispatcher,
        points: Mapping[PartitionKey, CommitPoint],
        taken: set[PartitionKey],
    ) -> None:
        points = {key: point for key, point in points.items() if key in taken}
        self._note_groups(points)
        dispatcher.mark_committed(points)
        self.committed.update((key, point.offset) for key, point in points.items())

    async def _commit_periodically(
        self, transactions: TransactionalSink, consumer: AsyncConsumer, dispatcher: Dispatcher
    ) -> None:
        """The interval's transaction commit, made while the consumer's thread holds still."""

        async def commit(group_metadata: Any) -> None:
            async with transactions.quiet():
                await self._commit_transaction(transactions, dispatcher, group_metadata, {})

        await consumer.holding(commit)

    async def _commit_transaction(
        self,
        transactions: TransactionalSink,
        dispatcher: Dispatcher,
        group_metadata: Any,
        released: dict[PartitionKey, CommitPoint],
    ) -> None:
        """Commit the open transaction with every partition's offsets and those of the
        partitions just ``released``; inside :meth:`TransactionalSink.quiet`, while the
        consumer's thread holds still (``group_metadata`` is current)."""
        points = dispatcher.committable()
        await transactions.commit({**points, **released}, group_metadata)
        self._note_groups(points)
        dispatcher.mark_committed(points)
        self.committed.update((key, point.offset) for key, point in points.items())
        for key in released:
            self.committed.pop(key, None)

    def _note_groups(self, points: Mapping[PartitionKey, CommitPoint]) -> None:
        """Remember the first commit that listed coalesced calls, to check the broker kept it."""
        if self._groups_checked or self._groups_unchecked is not None:
            return
        for key, point in points.items():
            if point.groups:
                self._groups_unchecked = key
                return

    async def _check_groups_kept(self, consumer: AsyncConsumer, dispatcher: Dispatcher) -> None:
        """Once: read back the first commit that listed coalesced calls. A broker that drops
        commit metadata (Tansu does) would let a replay group records otherwise than before, so
        coalescing stops there."""
        assert self._groups_unchecked is not None
        key, self._groups_unchecked = self._groups_unchecked, None
        self._groups_checked = True
        try:
            kept = await consumer.committed_metadata([key])
        except KafkaException as exc:
            log.warning("could not read the committed offsets back (%s)", exc)
            self._groups_checked = False
            return
        if key in kept and not kept[key]:
            log.warning(
                "the broker keeps no offset commit metadata: cart updates are no longer coalesced "
                "(a replay after a crash could not make the same calls again)"
            )
            dispatcher.stop_coalescing()


def _mappings(settings: Settings) -> Mappings | None:
    """The mapping file of ``settings``, compiled (``None`` when there is none).

    Raises:
        ConfigurationError: the file cannot be read or is not a valid mapping file.
    """
    if settings.mapping_file is None:
        return None
    mappings = load_mappings(settings.mapping_file)
    unread = sorted(mappings.topics - set(settings.input_topics))
    if unread:
        log.warning(
            "the mapping file %s maps %s, which TALON_STREAM_INPUT_TOPICS does not list",
            mappings.source,
            ", ".join(unread),
        )
    log.info("mapping %s with %s", ", ".join(sorted(mappings.topics)), mappings.source)
    return mappings


def _avro(settings: Settings) -> AvroFormats | None:
    """The Avro side of the worker, or ``None`` when no topic it reads or writes is Avro (the
    Schema Registry client is then never imported).

    Raises:
        ConfigurationError: a topic is Avro but no Schema Registry URL is set.
    """
    if not any(kind == "avro" for kind in settings.topic_formats.values()):
        return None
    from talon_stream.formats.avro.formats import avro_formats

    return avro_formats(settings)


def _rate_limiter(settings: Settings) -> RateLimiter | None:
    if settings.max_requests_per_s is None:
        return None
    return RateLimiter(settings.max_requests_per_s, burst=settings.rate_burst)


def _adaptive_concurrency(settings: Settings) -> AdaptiveConcurrency | None:
    if not settings.adaptive_concurrency or settings.dispatch != "keyed":
        return None
    threshold_ms = settings.adaptive_latency_threshold_ms
    return AdaptiveConcurrency(
        settings.max_in_flight,
        minimum=min(settings.adaptive_min_in_flight, settings.max_in_flight),
        latency_threshold_s=None if threshold_ms is None else threshold_ms / 1000,
    )


def _describe(partitions: list[PartitionKey]) -> str:
    return (
        ", ".join(f"{topic}[{partition}]" for topic, partition in sorted(partitions)) or "nothing"
    )


def _key_source(settings: Settings, application: str) -> StaticApiKey | ApiKeyFile:
    """Application ``application``'s API key, a value or a file (re-read every
    ``talon_api_key_poll_s``).

    Raises:
        ConfigurationError: no key, or a key file that cannot be read or is empty.
    """
    value, file, key_setting, file_setting = settings.application_key(application)
    return api_key_source(
        value,
        file,
        key_setting=key_setting,
        file_setting=file_setting,
        poll_s=settings.talon_api_key_poll_s,
    )


def _proxy(settings: Settings, base_url: str) -> Proxy | None:
    """The proxy calls to ``base_url`` go through.

    Raises:
        ConfigurationError: the proxy URL cannot be used.
    """
    try:
        return proxy_for(base_url, **settings.proxies())
    except ValueError as exc:
        raise ConfigurationError(f"HTTPS_PROXY / HTTP_PROXY: {exc}") from exc


def _wall_ms() -> float:
    """Wall-clock milliseconds: the clock of Kafka record timestamps."""
    return time.time() * 1000
