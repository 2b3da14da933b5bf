"""Where a Talon.One client finds its API key: a fixed value, or a file that is re-read while the
worker runs, so that a key rotated in a mounted Kubernetes Secret is taken up without a restart.

:class:`ApiKeyFile` compares the file's *content* — Kubernetes replaces a Secret's files by
swapping a ``..data`` symlink, which the path's own modification time does not show — every
``poll_s`` seconds (:meth:`ApiKeyFile.watch`), and at once when Talon.One refuses the key
(:meth:`ApiKeyFile.refresh`). A file that is missing or empty while it is being replaced keeps
the key it last held.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol

from pydantic import SecretStr

from talon_stream._exceptions import ConfigurationError

__all__ = ["ApiKeyFile", "ApiKeySource", "StaticApiKey", "api_key_source"]

log = logging.getLogger(__name__)


class ApiKeySource(Protocol):
    """The key new requests carry (``value``); ``refresh`` looks again after a refusal and says
    whether the key changed."""

    @property
    def value(self) -> str: ...

    async def refresh(self) -> bool: ...


class StaticApiKey:
    """A key given as a value: it never changes."""

    def __init__(self, value: str) -> None:
        self._value = value

    @property
    def value(self) -> str:
        return self._value

    async def refresh(self) -> bool:
        return False


class ApiKeyFile:
    """A key read from ``path`` (surrounding white space dropped), re-read when asked.

    Args:
        path: the file (a Secret's key mounted as a file).
        setting: the setting that named it, for messages.
        poll_s: how often :meth:`watch` re-reads it.
        sleep: awaited between two reads by :meth:`watch` (injectable for tests).

    Raises:
        ConfigurationError: the file cannot be read or holds no key (at construction only).
    """

    def __init__(
        self,
        path: Path,
        *,
        setting: str = "TALON_STREAM_TALON_API_KEY_FILE",
        poll_s: float = 5.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.path = path
        self.setting = setting
        self._poll_s = poll_s
        self._sleep = sleep
        try:
            key = self._read()
        except OSError as exc:
            raise ConfigurationError(f"{setting} ({path}) cannot be read: {exc.strerror}") from exc
        if not key:
            raise ConfigurationError(
                f"{setting} ({path}) is empty: it must hold a Talon.One Integration API key"
            )
        self._value = key
        #: How many times a new key was taken up.
        self.rotations = 0
        self._reading: asyncio.Future[bool] | None = None
        self._warned = False

    @property
    def value(self) -> str:
        return self._value

    async def refresh(self) -> bool:
        """Read the file again (in a thread) and take up its key if it changed; whether it did.
        Callers that ask while a read is under way share it."""
        if self._reading is not None:
            return await asyncio.shield(self._reading)
        reading = asyncio.get_running_loop().create_future()
        self._reading = reading
        changed = False
        try:
            changed = self._take(await asyncio.to_thread(self._read_or_none))
        finally:  # those sharing a read that was cancelled learn of no change
            self._reading = None
            reading.set_result(changed)
        return changed

    async def watch(self) -> None:
        """Re-read the file every ``poll_s`` seconds until cancelled."""
        while True:
            await self._sleep(self._poll_s)
            await self.refresh()

    def _read(self) -> str:
        return self.path.read_text(encoding="utf-8").strip()

    def _read_or_none(self) -> str | None:
        try:
            return self._read()
        except (OSError, UnicodeDecodeError):
            return None

    def _take(self, key: str | None) -> bool:
        if not key:
            if not self._warned:  # a swap in progress, or gone: keep the key it last held
                log.warning(
                    "%s (%s) is missing or empty: keeping the last key", self.setting, self.path
                )
                self._warned = True
            return False
        self._warned = False
        if key == self._value:
            return False
        self._value = key
        self.rotations += 1
        log.warning("%s (%s) holds a new API key: new calls use it", self.setting, self.path)
        return True


def api_key_source(
    key: SecretStr | None,
    file: Path | None,
    *,
    key_setting: str,
    file_setting: str,
    poll_s: float = 5.0,
) -> StaticApiKey | ApiKeyFile:
    """The key of one Application: the value ``key`` or the file ``file`` (one of the two).

    Raises:
        ConfigurationError: neither is set, both are, or the file cannot be used.
    """
    value = key.get_secret_value() if key is not None else ""
    if value and file is not None:
        raise ConfigurationError(
            f"{key_setting} and {file_setting} are both set: give the key one way only"
        )
    if file is not None:
        return ApiKeyFile(file, setting=file_setting, poll_s=poll_s)
    if not value:
        raise ConfigurationError(
            f"no Talon.One API key: set {key_setting} to an Integration API key (Campaign "
            f"Manager: Settings, Integration API Keys), or {file_setting} to a file holding it"
        )
    return StaticApiKey(value)
