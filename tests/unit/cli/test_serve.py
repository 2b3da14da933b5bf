"""``talon-stream run`` and ``talon-stream notifications`` as processes: a port of their own that
is taken stops them with exit 2 and a message that says so, not a traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from talon_stream.cli._main import EXIT_CONFIG

CLI = str(Path(sys.executable).with_name("talon-stream"))


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


def serve(command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, command],
        env={
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",  # nothing listens: never reached
            "TALON_STREAM_TALON_API_KEY": "key",
            "TALON_STREAM_TALON_BASE_URL": "http://127.0.0.1:9",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_run_with_its_health_port_taken_exits_2_saying_so(taken_port: int) -> None:
    done = serve(
        "run",
        {"TALON_STREAM_HEALTH_HOST": "127.0.0.1", "TALON_STREAM_HEALTH_PORT": str(taken_port)},
    )
    assert done.returncode == EXIT_CONFIG, done.stderr
    assert "talon-stream: cannot listen:" in done.stderr
    assert str(taken_port) in done.stderr
    assert "Traceback" not in done.stderr


def test_notifications_with_its_port_taken_exits_2_saying_so(taken_port: int) -> None:
    done = serve(
        "notifications",
        {
            "TALON_STREAM_NOTIFICATIONS_AUTH_TOKEN": "token",
            "TALON_STREAM_NOTIFICATIONS_HOST": "127.0.0.1",
            "TALON_STREAM_NOTIFICATIONS_PORT": str(taken_port),
            "TALON_STREAM_NOTIFICATIONS_HEALTH_PORT": "0",
        },
    )
    assert done.returncode == EXIT_CONFIG, done.stderr
    assert "talon-stream: cannot listen:" in done.stderr
    assert "Traceback" not in done.stderr
