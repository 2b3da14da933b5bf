"""A local emulator of the Talon.One Integration API.

It answers the session, profile and event operations the connector uses exactly as Talon.One
does (paths, bodies, effects, errors, session state machine), evaluating campaigns from a YAML
file. See ``docs/emulator.md``.

Public API::

    from emulator import EmulatorConfig, EmulatorServer

    with EmulatorServer(EmulatorConfig(api_keys=["test-key"])) as server:
        server.base_url                       # http://127.0.0.1:PORT
        server.state.request_log.entries()    # every call the emulator answered
        server.faults.apply(FaultSettings(error_rates={503: 0.1}))   # inject faults
"""

from emulator.app import EmulatorApp, create_app
from emulator.campaigns import CampaignSet, load_campaigns, parse_campaigns
from emulator.config import EmulatorConfig
from emulator.errors import (
    ApiError,
    CampaignFileError,
    ConfigError,
    EmulatorError,
)
from emulator.faults import FaultInjector, FaultSettings
from emulator.idempotency import IdempotencyStore
from emulator.operations import IntegrationService
from emulator.requestlog import RequestLog, RequestLogEntry
from emulator.server import EmulatorServer, run_forever, serve
from emulator.state import EmulatorState

__all__ = [
    "ApiError",
    "CampaignFileError",
    "CampaignSet",
    "ConfigError",
    "EmulatorApp",
    "EmulatorConfig",
    "EmulatorError",
    "EmulatorServer",
    "EmulatorState",
    "FaultInjector",
    "FaultSettings",
    "IdempotencyStore",
    "IntegrationService",
    "RequestLog",
    "RequestLogEntry",
    "create_app",
    "load_campaigns",
    "parse_campaigns",
    "run_forever",
    "serve",
]
