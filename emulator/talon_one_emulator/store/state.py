"""The emulator's store: sessions, profiles, promotions, audiences, catalogs, the request log.

Plain mutable records in dicts keyed by integration ID; the operations in
:mod:`talon_one_emulator.api.operations` read and change them. Everything runs on the server's event
loop, so
no locking is needed except in the request log, which tests read from another thread.

State stays bounded. Real Talon.One keeps every session and profile; the emulator keeps at most
``max_sessions`` sessions and ``max_profiles`` profiles and forgets the oldest-created one beyond
that, together with what only it owns, after which the ID is one Talon.One has never seen::

    forgotten session ── nothing else is keyed by a session: its loyalty transactions are
                         its profile's (or card's) history, its created codes the recipient's
    forgotten profile ── loyalty accounts, their transactions and UUID index entries, card
                         links (LoyaltyStore.forget_profile); coupon redemption and reservation
                         entries, per-profile budget counts, referred-friend entries, coupons
                         created for it, referrals it advocates, giveaway recipient
                         (PromotionLedger.forget_profile); audience memberships
                         (AudienceStore.forget_profile)

Advanced events (trackEventV3) have a cap of their own, ``max_events``: beyond it the oldest is
forgotten (:class:`~talon_one_emulator.store.events.AdvancedEventStore`); they are not a
profile's, so a forgotten profile leaves them in place.

Bounded otherwise: campaigns, catalogs, coupons of the campaign file, giveaway pools and campaign
counters by the campaign file; the request log and the Idempotency-Key answers by their own caps;
the per-ID concurrency slots by the requests in flight. Grown only by other API calls (not by
sessions or profiles): audiences, generated loyalty cards, catalog syncs' price history, referrals
created through the API for an advocate who is no profile.
"""

from __future__ import annotations

import itertools
from collections import deque
from typing import Literal

from talon_one_emulator.campaigns.file import CampaignSet
from talon_one_emulator.rules.engine import CouponInfo, RuleEngine
from talon_one_emulator.store.audiences import AudienceStore
from talon_one_emulator.store.catalogs import CatalogStore
from talon_one_emulator.store.events import DEFAULT_MAX_EVENTS, AdvancedEventStore
from talon_one_emulator.store.loyalty import LoyaltyStore, points_view_needed
from talon_one_emulator.store.notifier import Notifier
from talon_one_emulator.store.promotion_ledger import CouponRecord, PromotionLedger
from talon_one_emulator.store.records import (
    CartItemRecord,
    Clock,
    ProfileRecord,
    ReturnRecord,
    SessionRecord,
)
from talon_one_emulator.store.requestlog import DEFAULT_REQUEST_LOG_SIZE, RequestLog
from talon_one_emulator.times import format_time, utc_now

__all__ = [
    "DEFAULT_MAX_EVENTS",
    "DEFAULT_MAX_PROFILES",
    "DEFAULT_MAX_SESSIONS",
    "CartItemRecord",
    "Clock",
    "CouponRecord",
    "EmulatorState",
    "ProfileRecord",
    "ReturnRecord",
    "SessionRecord",
]

_IdKind = Literal["session", "profile", "event", "return"]

DEFAULT_MAX_SESSIONS = 200_000
DEFAULT_MAX_PROFILES = 200_000


class EmulatorState:
    """Everything one emulated Application remembers.

    Args:
        campaigns: the parsed campaign file.
        application_id: reported as ``applicationId`` in responses.
        account_id: reported as ``accountId``.
        clock: returns the current time (injectable for tests).
        request_log_size: how many request log entries are kept.
        max_sessions: sessions kept at most; the oldest-created one is forgotten beyond.
        max_profiles: profiles kept at most; the oldest-created one is forgotten beyond,
            with what only it owns.
        max_events: advanced events kept at most; the oldest one is forgotten beyond.

    Raises:
        ValueError: ``max_sessions``, ``max_profiles`` or ``max_events`` is below 1.
    """

    def __init__(
        self,
        campaigns: CampaignSet,
        *,
        application_id: int = 1,
        account_id: int = 1,
        clock: Clock = utc_now,
        request_log_size: int = DEFAULT_REQUEST_LOG_SIZE,
        max_sessions: int = DEFAULT_MAX_SESSIONS,
        max_profiles: int = DEFAULT_MAX_PROFILES,
        max_events: int = DEFAULT_MAX_EVENTS,
    ) -> None:
        if max_sessions < 1 or max_profiles < 1:
            raise ValueError(
                f"max_sessions and max_profiles must be >= 1, got {max_sessions}, {max_profiles}"
            )
        self.campaigns = campaigns
        self.engine = RuleEngine(campaigns)
        self.application_id = application_id
        self.account_id = account_id
        self.clock = clock
        self.started = format_time(clock())
        self.sessions: dict[str, SessionRecord] = {}
        self.profiles: dict[str, ProfileRecord] = {}
        self.max_sessions = max_sessions
        self.max_profiles = max_profiles
        # Records in creation order beside the dicts: popping the oldest is O(1) here and
        # O(n) from a dict. A record no longer in its dict (under its ID) is skipped.
        self._session_order: deque[SessionRecord] = deque()
        self._profile_order: deque[ProfileRecord] = deque()
        # Coupons, referrals, giveaways and campaign budgets; `coupons` is the ledger's.
        self.ledger = PromotionLedger(
            self.engine.coupons.values(), self.engine.giveaways, self.started
        )
        self.coupons: dict[int, CouponRecord] = self.ledger.coupons
        self.audiences = AudienceStore()
        self.catalogs = CatalogStore(campaigns.catalogs, self.started, clock())
        # Loyalty ledgers of profiles and cards, and the cards.
        self.loyalty = LoyaltyStore(
            campaigns.loyalty_programs,
            self.profiles,
            clock(),
            needs_view=points_view_needed(campaigns),
        )
        self.request_log = RequestLog(request_log_size)
        #: Where catalog syncs, loyalty changes and created coupons are reported (None: nowhere).
        self.notifications: Notifier | None = None
        self.events = AdvancedEventStore(max_events)
        self._ids: dict[_IdKind, itertools.count[int]] = {
            "session": itertools.count(1),
            "profile": itertools.count(1),
            "event": itertools.count(1),
            "return": itertools.count(1),
        }

    def next_id(self, kind: _IdKind) -> int:
        """The next internal ID of an entity kind (1, 2, ...)."""
        return next(self._ids[kind])

    def now_stamp(self) -> str:
        """The current time as Talon.One prints it."""
        return format_time(self.clock())

    def coupon_available(self, info: CouponInfo) -> bool:
        return self.coupons[info.id].available()

    def ensure_profile(self, integration_id: str, stamp: str) -> ProfileRecord:
        """The profile with this integration ID, created empty if unknown (as Talon.One does).

        Creating one beyond ``max_profiles`` forgets the oldest-created profile.
        """
        profile = self.profiles.get(integration_id)
        if profile is None:
            profile = ProfileRecord(self.next_id("profile"), integration_id, stamp, stamp)
            self.profiles[integration_id] = profile
            order = self._profile_order
            order.append(profile)
            while len(order) > self.max_profiles:
                self._forget_profile(order.popleft())
        return profile

    def add_session(self, session: SessionRecord) -> None:
        """Store a new session; beyond ``max_sessions`` the oldest-created one is forgotten."""
        self.sessions[session.integration_id] = session
        order = self._session_order
        order.append(session)
        while len(order) > self.max_sessions:
            self._forget_session(order.popleft())

    def _forget_session(self, session: SessionRecord) -> None:
        # Only the dict holds a session: what it wrote elsewhere (loyalty transactions, created
        # coupons and referrals, redemptions) belongs to profiles, cards and campaigns.
        if self.sessions.get(session.integration_id) is session:
            del self.sessions[session.integration_id]

    def _forget_profile(self, profile: ProfileRecord) -> None:
        integration_id = profile.integration_id
        if self.profiles.get(integration_id) is not profile:
            return
        del self.profiles[integration_id]
        self.loyalty.forget_profile(integration_id)
        self.ledger.forget_profile(integration_id)
        self.audiences.forget_profile(integration_id)
