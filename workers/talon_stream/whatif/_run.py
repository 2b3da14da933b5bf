"""The run: :func:`run_what_if` reads the live envelopes of the window
(:mod:`~talon_stream.whatif._live`), then the window itself (:mod:`~talon_stream.whatif._window`)
in the order the worker runs it — co-partitioned input topics merged by record timestamp
(:class:`~talon_stream.scheduling.EventTimeMerge`), each partition in offset order — decodes
each record as the worker does (:class:`~talon_stream.formats.Decoder`), folds it into the
session book, evaluates it with a dry call, and compares. The Kafka clients' configurations are
built here from :class:`~talon_stream.config.Settings`.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

from confluent_kafka import Consumer, Producer

from talon_stream._exceptions import ConfigurationError, RecordError, TalonPermanentError
from talon_stream._version import __version__
from talon_stream.config._settings import DEFAULT_APPLICATION, Settings
from talon_stream.core._applications import ApplicationRouter
from talon_stream.core._calls import TalonResponse
from talon_stream.core._records import InputRecord, PartitionKey
from talon_stream.core._translate import TranslationOptions
from talon_stream.formats._decoder import Decoder
from talon_stream.formats.mapping._mappings import load_mappings
from talon_stream.kafka._producer import AsyncProducer
from talon_stream.ops._stats import WorkerStats
from talon_stream.scheduling._merge import EventTimeMerge, co_partitioned_groups
from talon_stream.talon._caller import TalonCaller, TalonSender
from talon_stream.talon._client import TalonClient
from talon_stream.talon._halt import Halt
from talon_stream.talon._keys import api_key_source
from talon_stream.talon._limits import RateLimiter
from talon_stream.talon._proxy import proxy_for
from talon_stream.talon._tls import client_ssl_context
from talon_stream.whatif._diff import EventDiff, restrict
from talon_stream.whatif._evaluate import DryJob, DryOnlySender, DryRunEvaluator
from talon_stream.whatif._live import LiveEffects, read_live
from talon_stream.whatif._model import TopicNotFoundError, WhatIfOptions
from talon_stream.whatif._publish import DiffPublisher
from talon_stream.whatif._report import EventsCsv, WhatIfReport
from talon_stream.whatif._sessions import SessionBook
from talon_stream.whatif._window import (
    PartitionRange,
    RangeReader,
    RangeScan,
    check_stalled,
)

if TYPE_CHECKING:  # the Schema Registry client is imported only when a topic is Avro
    from talon_stream.formats.avro.formats import AvroFormats, EnvelopeReader

__all__ = ["LIBRDKAFKA_LOG", "SUPERSEDED", "UNDECODABLE", "WhatIfObserver", "run_what_if"]

log = logging.getLogger(__name__)

#: librdkafka's own log lines, kept out of the way of the command's output.
LIBRDKAFKA_LOG = logging.getLogger("talon_stream.whatif.librdkafka")

#: Skipped-count keys of records this module turns away.
UNDECODABLE = "not a valid event"
OTHER_APPLICATION = "another Application's"
SUPERSEDED = "superseded live (not sent)"

_FETCH_BATCH = 500
_POLL_S = 0.2
#: A merged partition holding this many records waits (is paused) until it is down to half.
_MAX_BUFFERED = 2000

ClientFactory = Callable[[dict[str, Any]], Any]


class WhatIfObserver:
    """Hooks for a front end; each does nothing here."""

    def phase(self, name: str) -> None:
        """A phase begins: ``"live"`` (reading the effects topic) or ``"window"``."""

    def progress(self, read: int, total: int | None, report: WhatIfReport) -> None:
        """Offsets read of the current phase so far, of ``total`` (``None``: not known yet)."""

    def evaluated(self, diff: EventDiff) -> None:
        """One event was evaluated (or refused by Talon.One: ``diff.error``)."""


async def run_what_if(
    settings: Settings,
    options: WhatIfOptions,
    *,
    observer: WhatIfObserver | None = None,
    events_csv: IO[str] | None = None,
    talon: TalonSender | None = None,
    consumer_factory: ClientFactory = Consumer,
    producer_factory: ClientFactory = Producer,
) -> WhatIfReport:
    """Evaluate ``options.campaigns`` over the window, compare with the live effects and count
    (see :mod:`talon_stream.whatif`). ``talon`` replaces the Talon.One client the settings
    describe; every call goes through :class:`~talon_stream.whatif.DryOnlySender` either way.

    Raises:
        ConfigurationError: no API key, a mapping file or Avro topic that cannot be used.
        TopicNotFoundError: an input, effects or diff topic does not exist.
        BrokerError: the broker could not be reached, stopped answering or refused a record.
        WhatIfHaltedError: Talon.One refused the API key or could not be reached.
    """
    observer = observer or WhatIfObserver()
    started = time.monotonic()
    router = _router(settings, options)
    base_url, api_key = _application(settings, options.application)
    if talon is not None:
        api_key = ""
    run_id = uuid.uuid4()
    report = WhatIfReport(str(run_id), options.campaigns, options.since, options.until)
    decoder, avro = _decoder(settings)
    envelopes = _envelope_reader(settings)
    reader = RangeReader(_reader_config(settings), consumer_factory, settings.bootstrap_servers)
    closers: list[Any] = []
    try:
        counts = await _partition_counts(reader, settings, options)
        ranges: list[PartitionRange] = []
        for topic in settings.input_topics:
            ranges += await reader.call(
                reader.window,
                topic,
                counts[topic],
                options.since,
                options.until,
                options.since - options.lookback,
                options.timeout_s,
            )
        live = LiveEffects(options.campaigns, ranges)
        observer.phase("live")
        live_reader = RangeReader(
            _reader_config(settings), consumer_factory, settings.bootstrap_servers
        )
        try:
            await read_live(
                live_reader,
                settings.effects_topic,
                counts[settings.effects_topic],
                options.since,
                live,
                envelopes=envelopes,
                timeout_s=options.timeout_s,
                progress=lambda read, total: observer.progress(read, total, report),
            )
        finally:
            await live_reader.close()

        client = talon or _talon_client(settings, options, base_url, api_key)
        if isinstance(client, TalonClient):
            closers.append(client.aclose)
        stats = WorkerStats()
        caller = TalonCaller(
            DryOnlySender(client),
            stats=stats,
            halt=Halt(),
            rate=RateLimiter(options.rate_per_s),
            retry_initial_s=settings.retry_initial_backoff_s,
            retry_max_s=settings.retry_max_backoff_s,
            unreachable_halt_after_s=settings.unreachable_halt_after_s,
        )
        publisher: DiffPublisher | None = None
        if options.diff_topic is not None:
            producer = AsyncProducer(_producer_config(settings), factory=producer_factory)
            publisher = DiffPublisher(producer, options.diff_topic)
            closers.insert(0, publisher.close)
            closers.append(producer.close)
        answered = _Answers(
            options,
            live,
            report,
            observer,
            publisher,
            EventsCsv(events_csv) if events_csv is not None else None,
        )
        evaluator = DryRunEvaluator(caller, answered, max_in_flight=options.max_in_flight)
        closers.insert(0, evaluator.close)
        book = SessionBook(
            options.campaigns,
            TranslationOptions(
                response_content=settings.response_content,
                dry=True,
                profile_run_rule_engine=settings.profile_run_rule_engine,
            ),
            max_sessions=options.max_sessions,
        )
        window = _Window(ranges, report, decoder, live, book, evaluator, run_id, router)
        observer.phase("window")
        merge = _merge(settings, counts, ranges)
        await _read_window(reader, ranges, merge, window, avro, options, observer, report)
        await evaluator.drain()
        if publisher is not None:
            await publisher.flush()
        report.calls = stats.calls.total()
        report.retries = stats.retries
        report.sessions_forgotten = book.forgotten
        report.elapsed_s = time.monotonic() - started
        return report
    finally:
        for close in closers:
            await close()
        await reader.close()
        if avro is not None:
            avro.close()
        if envelopes is not None:
            envelopes.close()


class _Answers:
    """What becomes of each answer: its diff, counted, published, written and shown."""

    def __init__(
        self,
        options: WhatIfOptions,
        live: LiveEffects,
        report: WhatIfReport,
        observer: WhatIfObserver,
        publisher: DiffPublisher | None,
        rows: EventsCsv | None,
    ) -> None:
        self._campaigns = options.campaigns
        self._live = live
        self._report = report
        self._observer = observer
        self._publisher = publisher
        self._rows = rows
        self._run = {
            "runId": report.run_id,
            "campaigns": list(options.campaigns),
            "since": options.since.isoformat(),
            "until": options.until.isoformat(),
        }

    def __call__(self, job: DryJob, answer: TalonResponse | TalonPermanentError) -> None:
        if isinstance(answer, TalonPermanentError):
            status, error, effects = answer.status, str(answer.args[0]), []
        else:
            status, error, effects = answer.status, None, answer.effects
        diff = EventDiff(
            job.record,
            job.event,
            job.call,
            job.request_id,
            status,
            error,
            restrict(effects, self._campaigns),
            self._live.get(job.record),
        )
        self._report.add(diff)
        if self._publisher is not None:
            self._publisher.add(job.record.key, diff.to_record(self._run))
        if self._rows is not None:
            self._rows.write(diff)
        self._observer.evaluated(diff)


class _Window:
    """What happens to each record of the window, in the order it is run."""

    def __init__(
        self,
        ranges: list[PartitionRange],
        report: WhatIfReport,
        decoder: Decoder,
        live: LiveEffects,
        book: SessionBook,
        evaluator: DryRunEvaluator,
        run_id: uuid.UUID,
        router: tuple[ApplicationRouter, str] | None = None,
    ) -> None:
        self._ranges = {r.key: r for r in ranges}
        #: With several Applications: how records name theirs, and the one evaluated.
        self._router = router
        self._report = report
        self._decoder = decoder
        self._live = live
        self._book = book
        self._evaluator = evaluator
        self._run_id = run_id

    async def run(self, record: InputRecord) -> None:
        report = self._report
        in_window = self._ranges[record.partition_key].in_window(record.offset)
        if in_window:
            report.read += 1
        else:
            report.warm_up += 1
        try:
            event = self._decoder.decode(record)
        except RecordError:
            if in_window:
                report.skipped[UNDECODABLE] += 1
            return
        if self._router is not None:
            router, evaluated = self._router
            try:
                application = router.route(record, event)
            except RecordError:
                application = None
            if application != evaluated:
                if in_window:
                    report.skipped[OTHER_APPLICATION] += 1
                return
        if in_window:
            outcome = self._live.get(record)
            if outcome is not None and outcome.status == 0:
                # The worker did not send it (a newer event of its session was applied first).
                report.skipped[SUPERSEDED] += 1
                return
        try:
            step = self._book.step(event)
        except RecordError:
            if in_window:
                report.skipped[UNDECODABLE] += 1
            return
        if not in_window:
            return
        if step.call is None:
            report.skipped[step.skipped or "not evaluated"] += 1
            return
        # Per run: Talon.One must not answer a later run from its idempotency store.
        request_id = str(
            uuid.uuid5(self._run_id, f"{record.topic}/{record.partition}/{record.offset}")
        )
        await self._evaluator.submit(DryJob(record, event, step.call, request_id))


async def _read_window(
    reader: RangeReader,
    ranges: list[PartitionRange],
    merge: EventTimeMerge | None,
    window: _Window,
    avro: AvroFormats | None,
    options: WhatIfOptions,
    observer: WhatIfObserver,
    report: WhatIfReport,
) -> None:
    scan = RangeScan(ranges)
    await reader.call(reader.assign, ranges)
    paused: set[PartitionKey] = set()  # merged partitions holding too many records
    if merge is not None:
        merge.held = paused
    waited = 0.0
    while not scan.finished:
        fetched = await reader.call(reader.fetch, _FETCH_BATCH, _POLL_S)
        if fetched.empty:
            waited += _POLL_S
            check_stalled(waited, options.timeout_s, "the input topics", scan)
            continue
        waited = 0.0
        records = [record for record, _ in scan.take(fetched)]
        if avro is not None:
            await avro.prefetch(records)
        for record in records:
            if merge is None or not merge.add(record):
                await window.run(record)
        if merge is not None:
            for record in merge.release(lambda key: not scan.done(key)):
                await window.run(record)
            await _pace(reader, merge, paused, ranges)
        await reader.call(reader.pause, scan.newly_done())
        observer.progress(*scan.progress(), report)
    if merge is not None:
        for record in merge.release(lambda _key: False):
            await window.run(record)


async def _pace(
    reader: RangeReader,
    merge: EventTimeMerge,
    paused: set[PartitionKey],
    ranges: list[PartitionRange],
) -> None:
    """Pause merged partitions holding too many records, resume them at half."""
    stop, go = [], []
    for r in ranges:
        buffered = merge.buffered_in(r.key)
        if r.key not in paused and buffered >= _MAX_BUFFERED:
            stop.append(r.key)
        elif r.key in paused and buffered <= _MAX_BUFFERED // 2:
            go.append(r.key)
    paused.update(stop)
    paused.difference_update(go)
    await reader.call(reader.pause, stop)
    await reader.call(reader.resume, go)


def _merge(
    settings: Settings, counts: dict[str, int], ranges: list[PartitionRange]
) -> EventTimeMerge | None:
    """The worker's merge of co-partitioned input topics, or ``None`` when it reads each topic
    on its own. Nothing comes later than the window's end: no partition is waited for once read
    to its stop (``max_idle_ms`` 0)."""
    if not settings.merges_topics:
        return None
    groups = co_partitioned_groups({topic: counts[topic] for topic in settings.input_topics})
    merge = EventTimeMerge(groups, max_idle_ms=0, clock=lambda: time.time() * 1000)
    merge.assign(r.key for r in ranges if not r.empty)
    return merge if merge.active else None


async def _partition_counts(
    reader: RangeReader, settings: Settings, options: WhatIfOptions
) -> dict[str, int]:
    wanted = dict.fromkeys(settings.input_topics, "TALON_STREAM_INPUT_TOPICS")
    wanted[settings.effects_topic] = "TALON_STREAM_EFFECTS_TOPIC"
    if options.diff_topic is not None:
        wanted[options.diff_topic] = "--diff-topic"
    found = await reader.call(reader.partition_counts, list(wanted), options.timeout_s)
    counts: dict[str, int] = {}
    for topic, setting in wanted.items():
        count = found[topic]
        if count is None:
            raise TopicNotFoundError(topic, setting, settings.bootstrap_servers)
        counts[topic] = count
    return counts


def _router(settings: Settings, options: WhatIfOptions) -> tuple[ApplicationRouter, str] | None:
    """How records name their Application, and the one evaluated (``None``: only one)."""
    if settings.application_field is None:
        return None
    names = [DEFAULT_APPLICATION, *settings.applications]
    return ApplicationRouter(settings.application_field, names, DEFAULT_APPLICATION), (
        options.application
    )


def _application(settings: Settings, name: str) -> tuple[str, str]:
    """The base URL and API key of the Application evaluated.

    Raises:
        ConfigurationError: no such Application, or no API key.
    """
    if name == DEFAULT_APPLICATION:
        return settings.talon_base_url, settings.require_api_key()
    if name not in settings.applications:
        known = ", ".join([DEFAULT_APPLICATION, *settings.applications])
        raise ConfigurationError(f"--application {name!r} is not one of {known}")
    url, _ = settings.application_endpoint(name)
    value, file, key_setting, file_setting = settings.application_key(name)
    key = api_key_source(value, file, key_setting=key_setting, file_setting=file_setting)
    return url, key.value


def _talon_client(
    settings: Settings, options: WhatIfOptions, base_url: str, api_key: str
) -> TalonClient:
    try:
        proxy = proxy_for(base_url, **settings.proxies())
    except ValueError as exc:
        raise ConfigurationError(f"HTTPS_PROXY / HTTP_PROXY: {exc}") from exc
    return TalonClient(
        base_url,
        api_key,
        http_client=settings.http_client,
        timeout_s=settings.request_timeout_s,
        max_connections=min(settings.max_connections, options.max_in_flight),
        user_agent=f"talon-stream/{__version__} what-if",
        ssl_context=client_ssl_context(
            ca_file=settings.talon_ca_file,
            cert_file=settings.talon_client_cert_file,
            key_file=settings.talon_client_key_file,
        ),
        proxy=proxy,
    )


def _decoder(settings: Settings) -> tuple[Decoder, AvroFormats | None]:
    """The worker's decoder of the input topics: mapping file, Avro, canonical JSON."""
    mappings = load_mappings(settings.mapping_file) if settings.mapping_file is not None else None
    avro = None
    if any(settings.topic_formats.get(topic) == "avro" for topic in settings.input_topics):
        from talon_stream.formats.avro.formats import avro_formats

        avro = avro_formats(settings)
    decoder = Decoder(max_record_bytes=settings.max_record_bytes, mappings=mappings, avro=avro)
    return decoder, avro


def _envelope_reader(settings: Settings) -> EnvelopeReader | None:
    if settings.topic_formats.get(settings.effects_topic) != "avro":
        return None
    from talon_stream.formats.avro.formats import envelope_reader

    return envelope_reader(settings, settings.effects_topic)


def _reader_config(settings: Settings) -> dict[str, Any]:
    return {
        **settings.reader_config(),
        # Never the workers' group: partitions are assigned, nothing is committed.
        "group.id": f"{settings.group_id}.what-if-{uuid.uuid4().hex[:8]}",
        "enable.partition.eof": True,
        "allow.auto.create.topics": False,
        # While the calls keep the reader waiting, librdkafka prefetches at most this much.
        "queued.min.messages": 10_000,
        "queued.max.messages.kbytes": 8_192,
        "logger": LIBRDKAFKA_LOG,
    }


def _producer_config(settings: Settings) -> dict[str, Any]:
    return {
        **settings.kafka_client_config(),
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 20,
        "compression.type": "lz4",
        "allow.auto.create.topics": False,
        "logger": LIBRDKAFKA_LOG,
    }
