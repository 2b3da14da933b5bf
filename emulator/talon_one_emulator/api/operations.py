"""The emulated Integration API operations, without HTTP.

:class:`IntegrationService` takes parsed JSON bodies and typed query flags, changes the
:class:`~talon_one_emulator.store.state.EmulatorState` and returns the response body Talon.One would
send, or
raises an :class:`~talon_one_emulator.errors.ApiError`::

    IntegrationService
    ├── sessions, returns, reopen        talon_one_emulator.api.sessions (the state machine)
    ├── profiles and custom events       talon_one_emulator.api.profiles
    ├── advanced events (v3)             talon_one_emulator.api.advanced_events
    ├── .promotions                      referrals, coupon reservations
    (talon_one_emulator.api.promotions)
    ├── .audiences                       talon_one_emulator.store.audiences
    ├── .catalogs                        talon_one_emulator.store.catalogs
    └── .campaigns                       running campaigns (talon_one_emulator.api.campaigns)
"""

from __future__ import annotations

from talon_one_emulator.api.advanced_events import AdvancedEventOperations
from talon_one_emulator.api.audiences import AudienceService
from talon_one_emulator.api.campaigns import CampaignService
from talon_one_emulator.api.catalogs import CatalogService
from talon_one_emulator.api.promotions import PromotionService
from talon_one_emulator.api.sessions import SessionOperations
from talon_one_emulator.store.state import EmulatorState

__all__ = ["IntegrationService"]


class IntegrationService(SessionOperations, AdvancedEventOperations):
    """The Integration API operations over one :class:`EmulatorState`.

    Sessions, profiles, events and advanced events are methods here (inherited, so a request
    pays no extra call); referrals and coupon reservations are in ``promotions``, audiences in
    ``audiences``, catalogs in ``catalogs``, the list of running campaigns in ``campaigns``.
    """

    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        self.promotions = PromotionService(state)
        self.audiences = AudienceService(state)
        self.catalogs = CatalogService(state)
        self.campaigns = CampaignService(state)
