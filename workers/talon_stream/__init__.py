"""talon-stream: shop events on Kafka → Talon.One Integration API → effects on Kafka.

The public API is what this module and its subpackages export (each ``__all__``); the modules
whose names start with an underscore are internal and may change without notice. The data flow,
stage by stage::

    kafka ─► formats (decode) ─► core (translate) ─► scheduling ─► talon (call) ─► dlq / kafka
                                         processing (processor, dispatch, worker)
    config, ops (metrics, health, logs, tracing) and cli around them; demo as an extra.
"""

from talon_stream._exceptions import (
    BrokerError,
    ConfigurationError,
    DecodeError,
    ErasedCustomerError,
    InvalidSettingsError,
    MappingError,
    ParkedError,
    RecordError,
    RecordTooLargeError,
    TalonDuplicateError,
    TalonError,
    TalonFatalError,
    TalonPermanentError,
    TalonRetryableError,
    TalonStatusError,
    TalonStreamError,
    TalonTransportError,
    TranslationError,
)
from talon_stream._version import __version__
from talon_stream.config import Settings, load_settings
from talon_stream.core import (
    Event,
    Operation,
    TalonCall,
    TalonResponse,
    TranslationOptions,
    decode_event,
    effects_envelope,
    envelope_id,
    translate,
)
from talon_stream.processing import Worker
from talon_stream.talon import TalonClient

__all__ = [
    "BrokerError",
    "ConfigurationError",
    "DecodeError",
    "ErasedCustomerError",
    "Event",
    "InvalidSettingsError",
    "MappingError",
    "Operation",
    "ParkedError",
    "RecordError",
    "RecordTooLargeError",
    "Settings",
    "TalonCall",
    "TalonClient",
    "TalonDuplicateError",
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
