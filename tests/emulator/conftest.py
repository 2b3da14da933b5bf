"""Fixtures of the emulator's unit tests: a fake clock, the campaigns, the state and the
:class:`~talon_one_emulator.api.operations.IntegrationService` over them.

A test module overrides ``campaigns`` to run against its own campaign file, or ``state`` to set
other Application or account IDs; ``api`` follows. ``client`` serves the campaigns over HTTP
(see :func:`tests.emulator.support.call`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from talon_one_emulator.api.operations import IntegrationService
from talon_one_emulator.app import create_app
from talon_one_emulator.campaigns.file import CampaignSet, load_campaigns
from talon_one_emulator.config import EmulatorConfig
from talon_one_emulator.server import serve
from talon_one_emulator.store.state import EmulatorState
from tests.emulator.support import HTTP_KEY, FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def campaigns() -> CampaignSet:
    """The packaged default campaigns (parsed once: a CampaignSet is frozen)."""
    return load_campaigns()


@pytest.fixture
def state(campaigns: CampaignSet, clock: FakeClock) -> EmulatorState:
    return EmulatorState(campaigns, clock=clock)


@pytest.fixture
def api(state: EmulatorState) -> IntegrationService:
    return IntegrationService(state)


@pytest.fixture
async def client(campaigns: CampaignSet) -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client of an emulator of ``campaigns``, served on a loopback port."""
    app = create_app(EmulatorConfig(api_keys=[HTTP_KEY], campaigns=campaigns))
    async with serve(app) as port, aiohttp.ClientSession(f"http://127.0.0.1:{port}") as running:
        yield running
