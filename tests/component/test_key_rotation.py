"""A Talon.One client whose key comes from a file, against the emulator: each request carries the
key of the moment it is sent, and a 401 makes the client re-read the file — when the key changed,
the request is sent once more with the new key; when not, the 401 stands."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from talon_one_emulator import EmulatorConfig, EmulatorServer
from talon_stream._exceptions import TalonFatalError
from talon_stream.core._calls import Operation, TalonCall
from talon_stream.talon import ApiKeyFile, HttpClientKind, TalonClient

CLIENTS = [pytest.param(kind, id=kind) for kind in ("native", "aiohttp", "httpx")]


@pytest.fixture
def emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer(EmulatorConfig(api_keys=["key-one"])) as server:
        yield server


async def accept_only(emulator: EmulatorServer, key: str) -> None:
    """Talon.One revokes the old key: only ``key`` is accepted from now on."""
    async with (
        aiohttp.ClientSession() as session,
        session.put(f"{emulator.base_url}/__emulator/api-keys", json={"keys": [key]}) as answer,
    ):
        assert answer.status == 200


def call(session_id: str) -> TalonCall:
    return TalonCall(
        Operation.UPDATE_CUSTOMER_SESSION, session_id, {"customerSession": {"state": "open"}}
    )


@pytest.mark.parametrize("kind", CLIENTS)
async def test_a_refused_key_is_re_read_and_the_call_sent_again_with_the_new_one(
    kind: HttpClientKind, emulator: EmulatorServer, tmp_path: Path
) -> None:
    path = tmp_path / "api-key"
    path.write_text("key-one\n")
    key = ApiKeyFile(path, poll_s=3600)  # no watcher: only the refusal makes it look
    async with TalonClient(emulator.base_url, key, http_client=kind) as client:
        assert (await client.send(call("s-1"))).status == 200

        await accept_only(emulator, "key-two")
        with pytest.raises(TalonFatalError) as refused:
            await client.send(call("s-2"))  # the file still holds the revoked key
        assert refused.value.status == 401
        assert "key-one" not in str(refused.value)

        path.write_text("key-two\n")  # the Secret is updated
        assert (await client.send(call("s-3"), idempotency_key="k-3")).status == 200
    statuses = [(entry["sessionId"], entry["status"]) for entry in emulator.state.request_log]
    assert statuses == [("s-1", 200), ("s-2", 401), ("s-3", 401), ("s-3", 200)]
    assert key.rotations == 1


async def test_a_key_taken_up_by_the_watcher_is_used_by_the_next_request(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    path = tmp_path / "api-key"
    path.write_text("key-one")
    key = ApiKeyFile(path)
    async with TalonClient(emulator.base_url, key) as client:
        await accept_only(emulator, "key-two")
        path.write_text("key-two")
        assert await key.refresh()  # what the watcher does every poll
        assert (await client.send(call("s-1"))).status == 200
    assert [entry["status"] for entry in emulator.state.request_log] == [200]
