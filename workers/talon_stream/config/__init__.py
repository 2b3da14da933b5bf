"""Configuration: typed, frozen :class:`Settings` read once at start-up from ``TALON_STREAM_*``
variables, a TOML file, ``KAFKA_*`` variables and command-line overrides (``docs/`` and the
README list every setting)."""

from talon_stream.config._settings import (
    DEFAULT_APPLICATION,
    DEFAULT_INPUT_TOPICS,
    ApplicationSettings,
    Settings,
    load_settings,
)

__all__ = [
    "DEFAULT_APPLICATION",
    "DEFAULT_INPUT_TOPICS",
    "ApplicationSettings",
    "Settings",
    "load_settings",
]
