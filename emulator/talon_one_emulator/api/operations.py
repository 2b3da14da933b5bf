"""The emulated Integration API operations, without HTTP.

:class:`IntegrationService` takes parsed JSON bodies and typed query flags, changes the
:class:`~talon_one_emulator.store.state.EmulatorState` and returns the response body Talon.One would
send, or
raises an :class:`~talon_one_emulator.errors.ApiError`::

    IntegrationService
    ├── sessions, returns, reopen        talon_one_emulator.api.sessions (the state machine)
    ├── profiles and custom events       talon_one_emulator.api.profiles
    ├── .promotions                      referrals, coupon reservations
    (talon_one_emulator.api.promotions)
    ├── .audiences                       talon_one_emulator.store.audiences
    └── .catalogs                        talon_one_emulator.store.catalogs
"""

from __future__ import annotations

from talon_one_emulator.api.audiences import AudienceService
from talon_one_emulator.api.catalogs import CatalogService
from talon_one_emulator.api.profiles import ProfileOperations
from talon_one_emulator.api.promotions import PromotionService
from talon_one_emulator.api.sessions import SessionOperations
from talon_one_emulator.store.state import EmulatorState

__all__ = ["IntegrationService"]


class IntegrationService(SessionOperations, ProfileOperations):
    """The Integration API operations over one :class:`EmulatorState`.

    Sessions, profiles and events are methods here (inherited, so a request pays no extra
    call); referrals and coupon reservations are in ``promotions``, audiences in ``audiences``,
    catalogs in ``catalogs``.
    """

    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        self.promotions = PromotionService(state)
        self.audiences = AudienceService(state)
        self.catalogs = CatalogService(state)
