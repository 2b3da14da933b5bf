"""``python -m talon_stream.cli``: the ``talon-stream`` command."""

from talon_stream.cli._main import main

main()
