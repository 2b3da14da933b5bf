"""The ``talon-stream`` command."""

from talon_stream.cli._main import main

__all__ = ["main"]
