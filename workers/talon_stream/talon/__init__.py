"""Talon.One: the Integration API client over a pluggable HTTP transport (its proxy, TLS
context and API key source), the worker-wide halt, and the limits that keep a shared deployment
from being overrun."""

from talon_stream.talon._applications import Application, Halts
from talon_stream.talon._caller import Hold, TalonCaller, TalonSender
from talon_stream.talon._client import (
    FATAL_STATUSES,
    RETRYABLE_STATUSES,
    TalonClient,
    decode_answer,
    encode_request,
)
from talon_stream.talon._halt import Halt
from talon_stream.talon._http11 import Http11Client
from talon_stream.talon._keys import ApiKeyFile, ApiKeySource, StaticApiKey, api_key_source
from talon_stream.talon._limits import AdaptiveConcurrency, RateLimiter
from talon_stream.talon._proxy import Proxy, ProxyError, bypasses_proxy, proxy_for
from talon_stream.talon._tls import client_ssl_context
from talon_stream.talon._transports import (
    AiohttpTransport,
    Http11Transport,
    HttpClientKind,
    HttpxTransport,
    Origin,
    Transport,
    open_transport,
)

__all__ = [
    "FATAL_STATUSES",
    "RETRYABLE_STATUSES",
    "AdaptiveConcurrency",
    "AiohttpTransport",
    "ApiKeyFile",
    "ApiKeySource",
    "Application",
    "Halt",
    "Halts",
    "Hold",
    "Http11Client",
    "Http11Transport",
    "HttpClientKind",
    "HttpxTransport",
    "Origin",
    "Proxy",
    "ProxyError",
    "RateLimiter",
    "StaticApiKey",
    "TalonCaller",
    "TalonClient",
    "TalonSender",
    "Transport",
    "api_key_source",
    "bypasses_proxy",
    "client_ssl_context",
    "decode_answer",
    "encode_request",
    "open_transport",
    "proxy_for",
]
