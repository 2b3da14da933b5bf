"""A local emulator of the Talon.One Integration API.

It answers the session, profile and event operations the connector uses exactly as Talon.One
does (paths, bodies, effects, errors, session state machine), evaluating campaigns from a YAML
file. See ``docs/emulator.md``.

Public API::

    from talon_one_emulator import EmulatorConfig, EmulatorServer

    with EmulatorServer(EmulatorConfig(api_keys=["test-key"])) as server:
        server.base_url                       # http://127.0.0.1:PORT
        server.state.request_log.entries()    # every call the emulator answered
        server.faults.apply(FaultSettings(error_rates={503: 0.1}))   # inject faults
"""

from talon_one_emulator.api.operations import IntegrationService
from talon_one_emulator.app import EmulatorApp, create_app
from talon_one_emulator.campaigns.file import CampaignSet, load_campaigns, parse_campaigns
from talon_one_emulator.config import EmulatorConfig
from talon_one_emulator.errors import (
    ApiError,
    CampaignFileError,
    ConfigError,
    EmulatorError,
)
from talon_one_emulator.http.faults import (
    FaultInjector,
    FaultSettings,
    FixedLatency,
    LognormalLatency,
    NormalLatency,
    UniformLatency,
    parse_error_rate,
    parse_latency,
    parse_outage,
)
from talon_one_emulator.http.idempotency import IdempotencyStore
from talon_one_emulator.notifications.sender import Delivery, NotificationSender
from talon_one_emulator.notifications.settings import (
    NotificationSettings,
    NotificationWebhook,
    parse_webhook,
)
from talon_one_emulator.server import EmulatorServer, run_forever, serve
from talon_one_emulator.store.requestlog import RequestLog, RequestLogEntry
from talon_one_emulator.store.state import DEFAULT_MAX_PROFILES, DEFAULT_MAX_SESSIONS, EmulatorState

__all__ = [
    "DEFAULT_MAX_PROFILES",
    "DEFAULT_MAX_SESSIONS",
    "ApiError",
    "CampaignFileError",
    "CampaignSet",
    "ConfigError",
    "Delivery",
    "EmulatorApp",
    "EmulatorConfig",
    "EmulatorError",
    "EmulatorServer",
    "EmulatorState",
    "FaultInjector",
    "FaultSettings",
    "FixedLatency",
    "IdempotencyStore",
    "IntegrationService",
    "LognormalLatency",
    "NormalLatency",
    "NotificationSender",
    "NotificationSettings",
    "NotificationWebhook",
    "RequestLog",
    "RequestLogEntry",
    "UniformLatency",
    "create_app",
    "load_campaigns",
    "parse_campaigns",
    "parse_error_rate",
    "parse_latency",
    "parse_outage",
    "parse_webhook",
    "run_forever",
    "serve",
]
