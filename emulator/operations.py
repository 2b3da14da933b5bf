"""The emulated Integration API operations, without HTTP.

:class:`IntegrationService` takes parsed JSON bodies and typed query flags, changes the
:class:`~emulator.state.EmulatorState` and returns the response body Talon.One would send, or
raises an :class:`~emulator.errors.ApiError`::

    IntegrationService
    ├── sessions, returns, reopen        emulator.session_operations (the state machine)
    ├── profiles and custom events       emulator.profile_operations
    ├── .promotions                      referrals, coupon reservations (emulator.promotions)
    ├── .audiences                       emulator.audiences
    └── .catalogs                        emulator.catalogs
"""

from __future__ import annotations

from emulator.audiences import AudienceService
from emulator.catalogs import CatalogService
from emulator.profile_operations import ProfileOperations
from emulator.promotions import PromotionService
from emulator.session_operations import SessionOperations
from emulator.state import EmulatorState

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
