"""One record, start to outcome: decode → translate → call Talon.One → publish.

:class:`RecordProcessor` ties the stages together, each its own object: the
:class:`~talon_stream.formats.Decoder`, :func:`~talon_stream.core.translate`, the
:class:`~talon_stream.talon.TalonCaller` (retries, halt, limits) and the
:class:`~talon_stream.processing.OutcomePublisher` (effects envelope, routes, DLQ).
:meth:`RecordProcessor.execute` always ends in exactly one outcome record acknowledged by Kafka —
an effects envelope or a DLQ record — or raises a fatal error (a broker that refuses our
records) that must stop the worker.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from talon_stream._exceptions import (
    ErasedCustomerError,
    RecordError,
    TalonDuplicateError,
    TalonError,
    TalonPermanentError,
)
from talon_stream.config._settings import DEFAULT_APPLICATION, Settings
from talon_stream.core._applications import ApplicationRouter
from talon_stream.core._calls import Operation, TalonCall, TalonResponse
from talon_stream.core._catalog import catalog_action
from talon_stream.core._dead_letters import DlqFailure
from talon_stream.core._envelopes import coalesced_key, envelope_id
from talon_stream.core._events import (
    CartUpdated,
    Event,
    ProductDeleted,
    ProductUpdated,
    ProductUpserted,
)
from talon_stream.core._records import InputRecord, RecordSink
from talon_stream.core._routing import EffectRouter
from talon_stream.core._translate import (
    TranslationOptions,
    coalesce_session_updates,
    translate,
)
from talon_stream.dlq._writer import DeadLetterWriter
from talon_stream.formats._decoder import Decoder
from talon_stream.formats.mapping._mappings import Mappings
from talon_stream.ops._stats import WorkerStats
from talon_stream.ops._tracing import CallTrace, start_call_trace
from talon_stream.processing._bulk import BatchOutcome
from talon_stream.processing._catalog import CatalogSync
from talon_stream.processing._erasures import ErasureLedger
from talon_stream.processing._prepared import Prepared
from talon_stream.processing._profiles import ProfileBulk
from talon_stream.processing._publisher import OutcomePublisher
from talon_stream.processing._sessions import SessionLedger, Superseded
from talon_stream.talon._applications import Application
from talon_stream.talon._caller import Hold, TalonCaller, TalonSender
from talon_stream.talon._halt import Halt
from talon_stream.talon._limits import AdaptiveConcurrency, RateLimiter

if TYPE_CHECKING:  # the Avro side loads the Schema Registry client: only when a topic is Avro
    from talon_stream.formats.avro.formats import AvroFormats

__all__ = ["RecordProcessor"]


def _detached(error: RecordError) -> RecordError:
    """``error`` without its traceback and the exceptions it was raised from. A record's error
    waits with the record until it is dead-lettered, and only its class and message are
    published. The rest would keep the frames that raised it alive — the consumer loop's and the
    dispatcher's among them — in cycles the garbage collector cannot always see (pydantic keeps a
    validator's exception out of its reach), and with them the worker's Kafka clients."""
    error.__traceback__ = None
    error.__cause__ = None
    error.__context__ = None
    return error


def _nothing() -> None:
    """The default ``on_answered``: nobody to tell."""


class RecordProcessor:
    """Processes records for one worker; shared by all partitions."""

    def __init__(
        self,
        decoder: Decoder,
        caller: TalonCaller,
        publisher: OutcomePublisher,
        *,
        options: TranslationOptions,
        stats: WorkerStats,
        sessions: SessionLedger | None = None,
        erasures: ErasureLedger | None = None,
        catalog_linger_s: float = 0.5,
        profiles_linger_s: float = 0.5,
        applications: Mapping[str, tuple[TalonCaller, TranslationOptions]] | None = None,
        router: ApplicationRouter | None = None,
    ) -> None:
        """``caller`` and ``options`` are the default Application's; ``applications`` the
        others' (by name), and ``router`` says which a record is for."""
        self._decoder = decoder
        self._callers = {DEFAULT_APPLICATION: caller}
        self._options_by_application = {DEFAULT_APPLICATION: options}
        for name, (other, other_options) in (applications or {}).items():
            self._callers[name] = other
            self._options_by_application[name] = other_options
        self._router = router
        self._publisher = publisher
        self._options = options
        self.stats = stats
        #: What the worker knows of the sessions it updated (``None``: every record is sent).
        self.sessions = sessions
        #: The customers erased (``None``: records are never refused for an erasure).
        self.erasures = erasures
        #: Product records, batched into catalog sync calls.
        self.catalogs = CatalogSync(linger_s=catalog_linger_s)
        #: Profile updates without rules, gathered into bulk calls.
        self.profiles = ProfileBulk(linger_s=profiles_linger_s)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        talon: TalonSender,
        sink: RecordSink,
        *,
        stats: WorkerStats | None = None,
        halt: Halt | None = None,
        rate: RateLimiter | None = None,
        concurrency: AdaptiveConcurrency | None = None,
        mappings: Mappings | None = None,
        avro: AvroFormats | None = None,
        applications: Mapping[str, Application] | None = None,
    ) -> RecordProcessor:
        """The processor a worker configured by ``settings`` runs, calling Talon.One with
        ``talon`` and publishing to ``sink``; the worker passes the objects it shares with its
        dispatcher and metrics (``stats``, ``halt``, ``rate``, ``concurrency``) and what it read
        at start-up (``mappings``, ``avro``)."""
        stats = stats or WorkerStats()
        decoder = Decoder(max_record_bytes=settings.max_record_bytes, mappings=mappings, avro=avro)

        def caller_of(
            sender: TalonSender, halt: Halt | None, rate: RateLimiter | None, name: str | None
        ) -> TalonCaller:
            return TalonCaller(
                sender,
                stats=stats,
                halt=halt,
                rate=rate,
                concurrency=concurrency,
                retry_initial_s=settings.retry_initial_backoff_s,
                retry_max_s=settings.retry_max_backoff_s,
                unreachable_halt_after_s=settings.unreachable_halt_after_s,
                application=name,
                skip_unknown_attributes=settings.skip_unknown_attributes,
            )

        several = bool(applications)
        caller = caller_of(talon, halt, rate, DEFAULT_APPLICATION if several else None)
        dead_letters = DeadLetterWriter(
            sink,
            settings.dlq_topic,
            stats=stats,
            max_record_bytes=settings.max_record_bytes,
            park=settings.dlq_policy == "park",
            avro=avro,
        )
        publisher = OutcomePublisher(
            sink,
            settings.effects_topic,
            dead_letters,
            stats=stats,
            router=EffectRouter(settings.effect_routes) if settings.effect_routes else None,
            avro=avro,
        )
        options = TranslationOptions(
            response_content=settings.response_content,
            dry=settings.dry_run,
            profile_run_rule_engine=settings.profile_run_rule_engine,
            custom_events=settings.custom_events_api,
            catalog_id=settings.catalog_id,
            # One record at a time per partition would send bulk calls of a few profiles.
            bulk_profiles=settings.bulk_profiles and settings.dispatch == "keyed",
        )
        others = {
            name: (
                caller_of(app.talon, app.halt, app.rate, name),
                replace(options, catalog_id=app.catalog_id),
            )
            for name, app in (applications or {}).items()
        }
        router = None
        if settings.application_field is not None:
            router = ApplicationRouter(
                settings.application_field, [DEFAULT_APPLICATION, *others], DEFAULT_APPLICATION
            )
        return cls(
            decoder,
            caller,
            publisher,
            options=options,
            applications=others,
            router=router,
            stats=stats,
            sessions=(
                SessionLedger(settings.session_memory) if settings.supersede_late_carts else None
            ),
            erasures=ErasureLedger(sink, settings.erasures_topic),
            catalog_linger_s=settings.catalog_linger_ms / 1000,
            profiles_linger_s=settings.bulk_profiles_linger_ms / 1000,
        )

    def prepare(self, record: InputRecord) -> Prepared:
        """Decode and translate ``record`` (pure CPU work, no I/O). A record that cannot become a
        call is kept with its error, to be dead-lettered by :meth:`execute`."""
        stats = self.stats
        stats.consumed += 1
        stats.consumed_by_partition[record.partition_key] += 1
        prepared = Prepared(record, time.perf_counter(), datetime.now(tz=UTC))
        try:
            prepared.event = event = self._decoder.decode(record)
            options = self._options
            if self._router is not None:
                prepared.application = self._router.route(record, event)
                options = self._options_by_application[prepared.application]
            prepared.call = translate(event, options)
        except RecordError as exc:
            prepared.error = _detached(exc)
        return prepared

    async def process(self, record: InputRecord) -> None:
        """Bring ``record`` to its outcome: :meth:`prepare` then :meth:`execute`."""
        await self.execute(self.prepare(record))

    async def execute(
        self,
        prepared: Prepared,
        on_answered: Callable[[], None] = _nothing,
        joined: Sequence[Prepared] = (),
        hold: Hold | None = None,
    ) -> None:
        """Call Talon.One for a prepared record and publish its outcome. ``on_answered`` is
        called once, when no call is in flight for the record any more and only its outcome is
        left to publish (the dispatcher then lets another call start).

        ``joined``: cart updates of the same session that waited right behind it (see
        :func:`coalescible`), sent with it as one call when they can be; each still gets its
        own outcome. ``hold``: told when the call waits for its halted Application and when
        it goes on (``TalonCaller.call``).

        A refused API key halts the worker (the caller's ``halt``) and the call is probed until
        it succeeds: nothing is published meanwhile.

        Raises:
            BrokerError: the outcome could not be published; nothing was acknowledged.
        """
        if joined:
            await self._execute_coalesced([prepared, *joined], on_answered, hold)
            return
        event, call = prepared.event, prepared.call
        at = prepared.taken_at
        dead_letters = self._publisher.dead_letters
        if dead_letters.parked is not None:
            parked = dead_letters.parked_error(prepared.record, prepared.lock_keys())
            if parked is not None:
                on_answered()
                await self._publisher.dead_letter(prepared, DlqFailure(parked, 0, at, at))
                return
        if prepared.error is not None or event is None or call is None:
            error = prepared.error or RecordError("the record was not prepared")
            on_answered()
            await self._publisher.dead_letter(prepared, DlqFailure(error, 0, at, at))
            return
        refusal = self._erased(call)
        if refusal is not None:
            on_answered()
            await self._publisher.dead_letter(prepared, DlqFailure(refusal, 0, at, at))
            return
        sessions = self.sessions
        if sessions is not None and (superseded := sessions.superseded(event)) is not None:
            on_answered()
            await self._superseded(prepared, superseded)
            return
        if call.operation is Operation.SYNC_CATALOG:
            await self._sync_catalog(prepared, event, call, on_answered)
            return
        if call.operation is Operation.UPDATE_CUSTOMER_PROFILES:
            await self._update_profiles(prepared, on_answered, hold)
            return
        headers = prepared.record.headers
        trace = start_call_trace(headers, call.operation.value) if headers else None
        if trace is None:
            await self._call(prepared, event, call, None, on_answered, hold)
            return
        try:
            await self._call(prepared, event, call, trace, on_answered, hold)
        except BaseException as exc:
            trace.end(exc)
            raise
        trace.end()

    async def _one_by_one(
        self, group: Sequence[Prepared], on_answered: Callable[[], None], hold: Hold | None
    ) -> None:
        """Each record of ``group`` on its own, in order; the last one's answer is the group's."""
        for prepared in group[:-1]:
            await self.execute(prepared, hold=hold)
        await self.execute(group[-1], on_answered, hold=hold)

    async def _execute_coalesced(
        self, group: list[Prepared], on_answered: Callable[[], None], hold: Hold | None
    ) -> None:
        """Cart updates of one session as one call (:func:`coalesce_session_updates`, in
        event-time order): the latest of them owns the call (its Idempotency-Key and the routed
        effects); the others get the same answer in envelopes that name it (``coalescedInto``).
        Records superseded by what the session already holds are left out; a call Talon.One
        refuses is made again record by record, so only a bad record is dead-lettered."""
        if self._publisher.dead_letters.parked is not None or self._erased(group[0].call):
            await self._one_by_one(group, on_answered, hold)
            return
        sessions = self.sessions
        live: list[Prepared] = []
        late: list[tuple[Prepared, Superseded]] = []
        for prepared in group:
            assert prepared.event is not None
            verdict = sessions.superseded(prepared.event) if sessions is not None else None
            if verdict is None:
                live.append(prepared)
            else:
                late.append((prepared, verdict))
        if len(live) < 2:
            for prepared, verdict in late:
                await self._superseded(prepared, verdict)
            if live:
                await self.execute(live[0], on_answered, hold=hold)
            else:
                on_answered()
            return
        # Oldest event first (ties: offset order), so the newest values win.
        ordered = sorted(live, key=_occurred_at)
        owner = ordered[-1]
        calls = [p.call for p in ordered if p.call is not None]
        call = coalesce_session_updates(calls)
        record = owner.record
        key = envelope_id(record.topic, record.partition, record.offset)
        try:
            response, attempts = await self._callers[owner.application].call(
                call, coalesced_key([p.record for p in live]), None, hold
            )
        except TalonPermanentError:
            # Record by record, each with its own key: only a bad record is dead-lettered.
            await self._one_by_one(group, on_answered, hold)
            return
        assert owner.event is not None
        self._note_applied(owner.event, key, response)
        on_answered()
        for prepared, verdict in late:
            await self._superseded(prepared, verdict)
        into = {"envelopeId": key, "eventId": owner.event.event_id, "records": len(ordered)}
        for prepared in live:
            if prepared is owner:
                continue
            assert prepared.event is not None
            member = prepared.record
            await self._publisher.effects(
                prepared,
                prepared.event,
                call,
                response,
                envelope_key=envelope_id(member.topic, member.partition, member.offset),
                attempts=attempts,
                coalesced_into=into,
            )
        self.stats.calls_saved += len(ordered) - 1
        await self._publisher.effects(
            owner, owner.event, call, response, envelope_key=key, attempts=attempts
        )

    async def _sync_catalog(
        self, prepared: Prepared, event: Event, call: TalonCall, on_answered: Callable[[], None]
    ) -> None:
        """The product record's action goes in its catalog's next sync call (with others)."""
        assert isinstance(event, ProductUpserted | ProductUpdated | ProductDeleted)
        record = prepared.record
        outcome = await self.catalogs.sync(
            call.integration_id,
            catalog_action(event),
            record,
            self._callers[prepared.application],
            application=prepared.application,
        )
        on_answered()
        await self._publish_batched(prepared, event, call, outcome, "the catalog sync")

    async def _update_profiles(
        self, prepared: Prepared, on_answered: Callable[[], None], hold: Hold | None
    ) -> None:
        """The profile update goes in the next bulk call (with others); the records that
        joined it meanwhile (:meth:`join_bulk`) get their outcomes here too, in order."""
        if hold is not None:
            hold(True)  # waiting for the call, it holds its customer's keys but no call slot
        outcomes = await self.profiles.update(prepared, self._callers[prepared.application])
        on_answered()
        for member, outcome in outcomes:
            assert member.event is not None
            assert member.call is not None
            await self._publish_batched(
                member, member.event, member.call, outcome, "the bulk profile update"
            )

    async def _publish_batched(
        self,
        prepared: Prepared,
        event: Event,
        call: TalonCall,
        outcome: BatchOutcome,
        what: str,
    ) -> None:
        """The record's outcome of a call made for many (``what``): its envelope, or its DLQ
        record with the error."""
        if outcome.response is None:
            error = outcome.error or RecordError(f"{what} gave no answer")
            failure = DlqFailure(error, 1, prepared.taken_at, datetime.now(tz=UTC))
            await self._publisher.dead_letter(prepared, failure)
            return
        record = prepared.record
        await self._publisher.effects(
            prepared,
            event,
            call,
            outcome.response,
            envelope_key=envelope_id(record.topic, record.partition, record.offset),
            attempts=outcome.attempts,
        )

    def join_bulk(self, leader: Prepared, rider: Prepared) -> bool:
        """Merge ``rider`` — a profile update of ``leader``'s customer, nothing of theirs
        between them — into ``leader``'s bulk entry if it still waits for its call; whether it
        did. A record to be refused before any call (not prepared, erased customer, parked
        behind a dead letter) never joins."""
        call = rider.call
        if (
            call is None
            or rider.error is not None
            or call.operation is not Operation.UPDATE_CUSTOMER_PROFILES
            or self._publisher.dead_letters.parked is not None
            or self._erased(call) is not None
        ):
            return False
        return self.profiles.join(leader, rider)

    def _erased(self, call: TalonCall | None) -> ErasedCustomerError | None:
        """Why ``call`` is not to be made: its customer was erased (an erasure itself is)."""
        erasures = self.erasures
        if (
            erasures is None
            or call is None
            or call.profile_id is None
            or call.operation is Operation.DELETE_CUSTOMER_DATA
        ):
            return None
        erasure = erasures.find(call.profile_id)
        if erasure is None:
            return None
        return ErasedCustomerError(
            f"{erasure.describe()}: the customer's later records are not sent, so that "
            "Talon.One does not create the profile again"
        )

    async def _answer(
        self,
        call: TalonCall,
        key: str,
        trace: CallTrace | None,
        caller: TalonCaller,
        hold: Hold | None,
    ) -> tuple[TalonResponse, int]:
        """Talon.One's answer to ``call``. An erasure of a customer Talon.One does not know
        (404) is done already; a replayed advanced event (409, it exists) is answered by the
        stored event and its effects.

        Raises:
            TalonPermanentError: Talon.One refused the call.
        """
        try:
            return await caller.call(
                call, key, trace.http_headers if trace is not None else None, hold
            )
        except TalonDuplicateError as exc:
            assert call.body is not None
            read = TalonCall(Operation.GET_EVENT_V3, str(call.body["integrationId"]), None)
            response, attempts = await caller.call(read, "", None, hold)
            if response.body.get("profileId") != call.profile_id:
                raise TalonPermanentError(
                    "the eventId is the id of another customer's advanced event",
                    call=call,
                    status=exc.status,
                    body=exc.body,
                ) from exc
            return response, attempts + 1
        except TalonPermanentError as exc:
            if call.operation is Operation.DELETE_CUSTOMER_DATA and exc.status == 404:
                return TalonResponse(status=404, body={}, elapsed_s=0.0), 1
            raise

    def _note_applied(self, event: Event, key: str, response: TalonResponse) -> None:
        """Tell the session ledger Talon.One applied ``event`` (envelope ``key``), with the
        session's state when the answer has the session."""
        if self.sessions is None:
            return
        session = response.body.get("customerSession")
        state = session.get("state") if isinstance(session, dict) else None
        self.sessions.applied(event, key, state if isinstance(state, str) else None)

    async def _closed_state(
        self, event: Event, refusal: TalonPermanentError, caller: TalonCaller
    ) -> str | None:
        """When Talon.One refused a cart update (400) because its session is no longer open —
        closed, cancelled or returned by an event this worker does not remember (applied before
        a restart or a rebalance) — the session's state; else None (the refusal stands)."""
        if self.sessions is None or refusal.status != 400 or not isinstance(event, CartUpdated):
            return None
        assert event.session_id is not None
        read = TalonCall(Operation.GET_CUSTOMER_SESSION, event.session_id, None)
        try:
            response, _ = await caller.call(read, "", None)
        except TalonError:
            return None
        session = response.body.get("customerSession")
        state = session.get("state") if isinstance(session, dict) else None
        return state if isinstance(state, str) and state != "open" else None

    async def _superseded(self, prepared: Prepared, superseded: Superseded) -> None:
        event, call, record = prepared.event, prepared.call, prepared.record
        assert event is not None  # only a record that became a call is superseded
        assert call is not None
        by = superseded.by
        await self._publisher.superseded(
            prepared,
            event,
            call,
            {
                "eventId": by.event_id,
                "type": by.event_type,
                "occurredAt": by.occurred_at.isoformat() if by.occurred_at else None,
                "envelopeId": by.envelope_id,
                "sessionState": by.state,
                "reason": superseded.reason,
            },
            envelope_key=envelope_id(record.topic, record.partition, record.offset),
        )

    async def _call(
        self,
        prepared: Prepared,
        event: Event,
        call: TalonCall,
        trace: CallTrace | None,
        on_answered: Callable[[], None],
        hold: Hold | None = None,
    ) -> None:
        """Call Talon.One and publish the outcome; the trace context, if any, goes with the HTTP
        request and on the effects records."""
        record = prepared.record
        key = envelope_id(record.topic, record.partition, record.offset)
        caller = self._callers[prepared.application]
        try:
            response, attempts = await self._answer(call, key, trace, caller, hold)
        except TalonPermanentError as exc:
            state = await self._closed_state(event, exc, caller)
            on_answered()
            if state is not None:
                await self._superseded(prepared, Superseded.by_session_state(state))
                return
            failure = DlqFailure(exc, 1, prepared.taken_at, datetime.now(tz=UTC))
            await self._publisher.dead_letter(prepared, failure)
            return
        if call.session_id is not None:
            self._note_applied(event, key, response)  # before the session's next record starts
        if call.operation is Operation.DELETE_CUSTOMER_DATA and self.erasures is not None:
            # Written down before the outcome, and before the customer's next record starts.
            await self.erasures.record(
                call.integration_id, event_id=event.event_id, envelope_id=key
            )
            self.stats.customers_erased += 1
        on_answered()
        await self._publisher.effects(
            prepared,
            event,
            call,
            response,
            envelope_key=key,
            attempts=attempts,
            headers=trace.record_headers if trace is not None else None,
        )


def _occurred_at(prepared: Prepared) -> datetime:
    assert prepared.event is not None
    return prepared.event.occurred_at


def coalescible(earlier: Prepared, later: Prepared) -> bool:
    """Whether ``later`` may join ``earlier``'s call: both are cart updates that became calls
    (the scheduler joins only records of the same customer and session, waiting right behind
    one another, so nothing of the session comes between them)."""
    return (
        isinstance(earlier.event, CartUpdated)
        and isinstance(later.event, CartUpdated)
        and earlier.call is not None
        and later.call is not None
    )
