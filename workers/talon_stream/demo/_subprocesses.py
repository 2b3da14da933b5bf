"""Child processes that never outlive us: the embedded broker and the demo's emulator.

Each child gets its own process group (so a signal reaches its children too) and, on Linux, a
parent-death signal (``PR_SET_PDEATHSIG``), so even a ``kill -9`` of our process leaves no orphan.
The death signal fires when the *thread* that spawned the child exits: spawn from the main thread.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence

__all__ = ["free_port", "spawn", "spawn_emulator", "terminate"]

_PR_SET_PDEATHSIG = 1


def spawn(
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    stdout: int | None = subprocess.DEVNULL,
    stderr: int | None = subprocess.PIPE,
    death_signal: signal.Signals = signal.SIGTERM,
) -> subprocess.Popen[bytes]:
    """Start ``args`` in a new session, to be stopped with :func:`terminate`; it gets
    ``death_signal`` when we die."""
    return subprocess.Popen(  # noqa: S603 - callers pass fixed programs with built arguments
        list(args),
        stdout=stdout,
        stderr=stderr,
        env=dict(env) if env is not None else None,
        start_new_session=True,
        preexec_fn=_die_with_parent(death_signal),
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (callers retry on a collision)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def terminate(process: subprocess.Popen[bytes] | None, grace_s: float = 1.0) -> None:
    """SIGTERM the child's process group, SIGKILL it after ``grace_s``, and reap it."""
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


def spawn_emulator(
    api_key: str, *, latency_ms: float = 0.0, timeout_s: float = 30.0
) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``talon-stream emulator`` on a free loopback port; return it and its base URL once
    it answers its health check.

    Raises:
        RuntimeError: it exited or did not answer within ``timeout_s`` (with its last output).
    """
    port = free_port()
    process = spawn(
        [
            sys.executable, "-m", "talon_stream.cli", "emulator",
            "--host", "127.0.0.1", "--port", str(port), "--api-key", api_key,
            "--latency-ms", str(latency_ms), "--log-level", "warning",
        ]
    )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
            raise RuntimeError(f"the emulator exited: {stderr.strip()[-500:]}")
        try:
            urllib.request.urlopen(f"{base_url}/__emulator/health", timeout=1).close()  # noqa: S310
        except OSError:
            time.sleep(0.05)
        else:
            return process, base_url
    terminate(process)
    raise RuntimeError(f"the emulator did not answer within {timeout_s:.0f} s")


def _die_with_parent(signum: signal.Signals) -> Callable[[], None] | None:
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)

    def set_death_signal() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signum)

    return set_death_signal
