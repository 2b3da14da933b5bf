"""API keys from a file: read at start (a file that cannot be used stops the start), re-read by
content — a Kubernetes Secret's ``..data`` symlink swap leaves the path's own mtime alone — by
the watcher and on demand, keeping the last key while the file is missing or empty."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from pydantic import SecretStr

from talon_stream._exceptions import ConfigurationError
from talon_stream.talon import ApiKeyFile, StaticApiKey, api_key_source


def mounted_secret(folder: Path, key: str) -> Path:
    """A Secret volume as the kubelet lays it out: ``api-key`` → ``..data/api-key`` →
    ``..<timestamp>/api-key``; returns the path the worker is given."""
    version = folder / "..v1"
    version.mkdir()
    (version / "api-key").write_text(key + "\n")
    (folder / "..data").symlink_to(version.name)
    (folder / "api-key").symlink_to("..data/api-key")
    return folder / "api-key"


def rotate(folder: Path, key: str, name: str) -> None:
    """The kubelet's atomic update: a new version directory, then ``..data`` swapped by rename."""
    version = folder / name
    version.mkdir()
    (version / "api-key").write_text(key + "\n")
    (folder / "..data_tmp").symlink_to(version.name)
    os.replace(folder / "..data_tmp", folder / "..data")


async def test_a_key_file_is_read_at_start_and_again_when_asked(tmp_path: Path) -> None:
    path = mounted_secret(tmp_path, "key-one")
    key = ApiKeyFile(path)
    assert key.value == "key-one"
    assert not await key.refresh()
    link_mtime = os.lstat(path).st_mtime_ns
    rotate(tmp_path, "key-two", "..v2")
    assert os.lstat(path).st_mtime_ns == link_mtime  # the path itself did not change
    assert await key.refresh()
    assert key.value == "key-two"
    assert key.rotations == 1


async def test_the_watcher_takes_up_a_rotated_key_by_itself(tmp_path: Path) -> None:
    path = mounted_secret(tmp_path, "key-one")
    key = ApiKeyFile(path, poll_s=0.02)
    watcher = asyncio.get_running_loop().create_task(key.watch())
    try:
        rotate(tmp_path, "key-two", "..v2")
        for _ in range(500):  # up to 5 s
            if key.value == "key-two":
                break
            await asyncio.sleep(0.01)
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
    assert key.value == "key-two"
    assert key.rotations == 1


async def test_a_missing_or_empty_file_keeps_the_last_key(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "api-key"
    path.write_text("key-one")
    key = ApiKeyFile(path)
    path.unlink()
    assert not await key.refresh()
    path.write_text("  \n")
    assert not await key.refresh()
    assert key.value == "key-one"
    assert sum("keeping the last key" in r.message for r in caplog.records) == 1  # said once
    path.write_text("key-two")
    assert await key.refresh()
    assert key.value == "key-two"


async def test_refusals_at_once_share_one_read(tmp_path: Path) -> None:
    path = tmp_path / "api-key"
    path.write_text("key-one")
    key = ApiKeyFile(path)
    path.write_text("key-two")
    changed = await asyncio.gather(*(key.refresh() for _ in range(20)))
    assert changed.count(True) >= 1
    assert key.value == "key-two"
    assert key.rotations == 1


def test_a_key_file_that_cannot_be_used_stops_the_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"TALON_STREAM_TALON_API_KEY_FILE .* cannot be"):
        ApiKeyFile(tmp_path / "missing")
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ConfigurationError, match="is empty"):
        ApiKeyFile(tmp_path / "empty")


def test_the_key_is_given_one_way(tmp_path: Path) -> None:
    path = tmp_path / "api-key"
    path.write_text("key-one")
    names = {"key_setting": "K", "file_setting": "K_FILE"}
    assert isinstance(api_key_source(SecretStr("k"), None, **names), StaticApiKey)
    assert api_key_source(None, path, **names).value == "key-one"
    with pytest.raises(ConfigurationError, match="K and K_FILE are both set"):
        api_key_source(SecretStr("k"), path, **names)
    with pytest.raises(ConfigurationError, match=r"no Talon\.One API key: set K .* or K_FILE"):
        api_key_source(None, None, **names)
