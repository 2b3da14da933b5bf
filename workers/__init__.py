"""talon-stream: shop events on Kafka → Talon.One Integration API → effects on Kafka.

The public API is what this module exports; everything in ``workers.<module>`` with a leading
underscore, or not listed here, may change without notice.
"""

from workers._version import __version__
from workers.calls import Operation, TalonCall
from workers.config import Settings, load_settings
from workers.envelopes import effects_envelope, envelope_id
from workers.events import Event, decode_event
from workers.exceptions import (
    BrokerError,
    ConfigurationError,
    DecodeError,
    MappingError,
    RecordError,
    TalonError,
    TalonFatalError,
    TalonPermanentError,
    TalonRetryableError,
    TalonStatusError,
    TalonStreamError,
    TalonTransportError,
    TranslationError,
)
from workers.talon_client import TalonClient, TalonResponse
from workers.translate import TranslationOptions, translate
from workers.worker import Worker

__all__ = [
    "BrokerError",
    "ConfigurationError",
    "DecodeError",
    "Event",
    "MappingError",
    "Operation",
    "RecordError",
    "Settings",
    "TalonCall",
    "TalonClient",
    "TalonError",
    "TalonFatalError",
    "TalonPermanentError",
    "TalonResponse",
    "TalonRetryableError",
    "TalonStatusError",
    "TalonStreamError",
    "TalonTransportError",
    "TranslationError",
    "TranslationOptions",
    "Worker",
    "__version__",
    "decode_event",
    "effects_envelope",
    "envelope_id",
    "load_settings",
    "translate",
]
