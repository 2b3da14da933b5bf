"""The Talon.One transports at the network edge, on loopback with real peers: a private CA made
here, a TLS server with a certificate it signed (optionally requiring a client certificate) in
front of the emulator, and a real HTTP proxy process (proxy.py) in front of both. Every
transport — native, aiohttp, httpx — must refuse what it cannot trust, present its client
certificate, and go through the proxy unless NO_PROXY names the host."""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme
import uvloop

from talon_one_emulator import EmulatorConfig, EmulatorServer
from talon_stream._exceptions import ConfigurationError, TalonTransportError
from talon_stream.core._calls import Operation, TalonCall
from talon_stream.talon import (
    HttpClientKind,
    Proxy,
    TalonClient,
    client_ssl_context,
    proxy_for,
)

KEY = "edge-test-key"
CLIENTS = [pytest.param(kind, id=kind) for kind in ("native", "aiohttp", "httpx")]
PASSWORD = "pr0xy-s3cret"


def call(session_id: str = "edge-1") -> TalonCall:
    return TalonCall(
        Operation.UPDATE_CUSTOMER_SESSION,
        session_id,
        {"customerSession": {"state": "open", "cartItems": []}},
    )


# --- the peers ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    """A private CA and the PEM files made from it."""

    ca: trustme.CA
    ca_file: Path
    client_cert: Path  # certificate and key in one file
    client_cert_only: Path
    client_key_only: Path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    ca_file = folder / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    client = ca.issue_cert("talon-stream@example.test")
    both = folder / "client.pem"
    client.private_key_and_cert_chain_pem.write_to_path(str(both))
    cert_only = folder / "client-cert.pem"
    client.cert_chain_pems[0].write_to_path(str(cert_only))
    key_only = folder / "client-key.pem"
    client.private_key_pem.write_to_path(str(key_only))
    return Pki(ca, ca_file, both, cert_only, key_only)


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer(EmulatorConfig(api_keys=[KEY])) as server:
        yield server


class TlsFront:
    """A TLS server on loopback with a certificate of the private CA, relaying each connection
    to the emulator byte for byte; ``require_client_cert`` asks for a certificate of that CA."""

    def __init__(self, pki: Pki, upstream_port: int, *, require_client_cert: bool) -> None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        pki.ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        if require_client_cert:
            pki.ca.configure_trust(context)
            context.verify_mode = ssl.CERT_REQUIRED
        self._context = context
        self._upstream = upstream_port
        self.relayed = 0  # connections that got through the handshake
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> TlsFront:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0, ssl=self._context)
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._server.wait_closed(), 2)

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.relayed += 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._upstream)

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            with contextlib.suppress(Exception):
                sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


@contextlib.asynccontextmanager
async def tls_front(
    pki: Pki, emulator: EmulatorServer, *, require_client_cert: bool = False
) -> AsyncIterator[TlsFront]:
    async with TlsFront(pki, emulator.port, require_client_cert=require_client_cert) as front:
        yield front


@dataclass
class ProxyProcess:
    """proxy.py running in its own process; its access log tells what it tunnelled."""

    port: int
    log: Path
    process: subprocess.Popen[bytes]

    def url(self, credentials: str = "") -> str:
        return f"http://{credentials}127.0.0.1:{self.port}"

    def access_lines(self, target: str) -> list[str]:
        """Access-log lines of requests for ``target`` (``host:port``)."""
        text = self.log.read_text(encoding="utf-8", errors="replace")
        return [line for line in text.splitlines() if "access_log" in line and target in line]

    async def wait_for_lines(self, target: str, count: int, timeout_s: float = 10.0) -> list[str]:
        """proxy.py writes a line when a connection ends: wait for ``count`` of them."""
        deadline = time.monotonic() + timeout_s
        while len(lines := self.access_lines(target)) < count:
            if time.monotonic() > deadline:
                return lines
            await asyncio.sleep(0.05)
        return lines


def start_proxy(folder: Path, *extra: str) -> Iterator[ProxyProcess]:
    port_file = folder / "port"
    log = folder / "proxy.log"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "proxy",
            "--hostname",
            "127.0.0.1",
            "--port",
            "0",
            "--port-file",
            str(port_file),
            "--num-acceptors",
            "1",
            "--num-workers",
            "1",
            "--log-level",
            "INFO",
            "--log-file",
            str(log),
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            assert process.poll() is None, "proxy.py exited at start-up"
            assert time.monotonic() < deadline, "proxy.py did not start listening"
            time.sleep(0.05)
        yield ProxyProcess(int(port_file.read_text().strip()), log, process)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def open_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyProcess]:
    yield from start_proxy(tmp_path_factory.mktemp("proxy"))


@pytest.fixture(scope="module")
def guarded_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyProcess]:
    yield from start_proxy(tmp_path_factory.mktemp("guarded"), "--basic-auth", f"edge:{PASSWORD}")


async def send(
    url: str,
    kind: HttpClientKind,
    *,
    context: ssl.SSLContext | None = None,
    proxy: Proxy | None = None,
    session_id: str = "edge-1",
) -> int:
    async with TalonClient(
        url, KEY, http_client=kind, ssl_context=context, proxy=proxy, timeout_s=10
    ) as client:
        response = await client.send(call(session_id))
    return response.status


# --- a private CA ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", CLIENTS)
async def test_a_private_ca_is_refused_unless_its_bundle_is_set(
    kind: HttpClientKind, pki: Pki, emulator: EmulatorServer
) -> None:
    async with tls_front(pki, emulator) as front:
        with pytest.raises(TalonTransportError, match=r"(?i)certificate"):
            await send(front.url, kind)
        context = client_ssl_context(ca_file=pki.ca_file)
        assert await send(front.url, kind, context=context) == 200


@pytest.mark.parametrize("kind", CLIENTS)
async def test_a_server_that_requires_a_client_certificate_gets_the_configured_one(
    kind: HttpClientKind, pki: Pki, emulator: EmulatorServer
) -> None:
    seen_before = len(emulator.state.request_log)
    async with tls_front(pki, emulator, require_client_cert=True) as front:
        with pytest.raises(TalonTransportError):
            await send(front.url, kind, context=client_ssl_context(ca_file=pki.ca_file))
        assert len(emulator.state.request_log) == seen_before  # nothing got through

        together = client_ssl_context(ca_file=pki.ca_file, cert_file=pki.client_cert)
        assert await send(front.url, kind, context=together, session_id="edge-2") == 200
        apart = client_ssl_context(
            ca_file=pki.ca_file, cert_file=pki.client_cert_only, key_file=pki.client_key_only
        )
        assert await send(front.url, kind, context=apart, session_id="edge-3") == 200
    assert len(emulator.state.request_log) == seen_before + 2


def test_tls_files_that_cannot_be_used_stop_the_start_with_what_to_fix(
    pki: Pki, tmp_path: Path
) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    missing = tmp_path / "missing.pem"
    with pytest.raises(ConfigurationError, match=r"TALON_STREAM_TALON_CA_FILE .*cannot be read"):
        client_ssl_context(ca_file=missing)
    with pytest.raises(ConfigurationError, match=r"TALON_STREAM_TALON_CA_FILE .*no usable PEM"):
        client_ssl_context(ca_file=garbage)
    with pytest.raises(ConfigurationError, match=r"CLIENT_KEY_FILE is set without"):
        client_ssl_context(key_file=pki.client_key_only)
    with pytest.raises(ConfigurationError, match=r"set TALON_STREAM_TALON_CLIENT_KEY_FILE"):
        client_ssl_context(cert_file=pki.client_cert_only)  # the key is elsewhere
    with pytest.raises(ConfigurationError, match=r"CLIENT_CERT_FILE .* not a PEM certificate"):
        client_ssl_context(cert_file=garbage, key_file=pki.client_key_only)
    assert client_ssl_context() is None


# --- a real proxy ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", CLIENTS)
async def test_calls_go_through_the_proxy_with_connect_unless_no_proxy_names_the_host(
    kind: HttpClientKind, pki: Pki, emulator: EmulatorServer, open_proxy: ProxyProcess
) -> None:
    context = client_ssl_context(ca_file=pki.ca_file)
    async with tls_front(pki, emulator) as front:
        target = f"127.0.0.1:{front.port}"
        proxy = proxy_for(front.url, https_proxy=open_proxy.url(), no_proxy="localhost")
        assert proxy is not None
        assert await send(front.url, kind, context=context, proxy=proxy) == 200
        [line] = await open_proxy.wait_for_lines(target, 1)
        assert f"CONNECT {target}" in line
        assert front.relayed == 1

        for no_proxy in ("127.0.0.1", "*", f"localhost, 127.0.0.0/8:{front.port}"):
            bypass = proxy_for(front.url, https_proxy=open_proxy.url(), no_proxy=no_proxy)
            assert bypass is None, no_proxy
            assert await send(front.url, kind, context=context, proxy=bypass) == 200
        await asyncio.sleep(0.5)  # what the proxy would have logged by now
        assert len(open_proxy.access_lines(target)) == 1
        assert front.relayed == 4


@pytest.mark.parametrize("kind", CLIENTS)
async def test_a_plain_http_origin_goes_through_the_proxy_too(
    kind: HttpClientKind, emulator: EmulatorServer, open_proxy: ProxyProcess
) -> None:
    target = f"127.0.0.1:{emulator.port}"
    before = len(open_proxy.access_lines(target))
    proxy = proxy_for(emulator.base_url, http_proxy=open_proxy.url(), https_proxy=None)
    assert proxy is not None
    assert await send(emulator.base_url, kind, proxy=proxy) == 200
    lines = await open_proxy.wait_for_lines(target, before + 1)
    assert len(lines) == before + 1
    # The native client tunnels; aiohttp and httpx send the request in absolute form.
    method = "CONNECT" if kind == "native" else "PUT"
    assert re.search(rf"{method} (http://)?{re.escape(target)}", lines[-1]), lines[-1]


@pytest.mark.parametrize("kind", CLIENTS)
async def test_a_proxy_that_wants_credentials_takes_them_from_the_url_and_says_when_missing(
    kind: HttpClientKind, pki: Pki, emulator: EmulatorServer, guarded_proxy: ProxyProcess
) -> None:
    context = client_ssl_context(ca_file=pki.ca_file)
    async with tls_front(pki, emulator) as front:
        with pytest.raises(TalonTransportError) as refused:
            await send(front.url, kind, context=context, proxy=Proxy.from_url(guarded_proxy.url()))
        message = str(refused.value)
        assert "407" in message
        assert f"127.0.0.1:{guarded_proxy.port}" in message  # names the proxy
        assert front.relayed == 0

        wrong = Proxy.from_url(guarded_proxy.url("edge:wrong@"))
        with pytest.raises(TalonTransportError, match="407") as refused_wrong:
            await send(front.url, kind, context=context, proxy=wrong)
        assert "wrong" not in str(refused_wrong.value)

        good = Proxy.from_url(guarded_proxy.url(f"edge:{PASSWORD}@"))
        assert await send(front.url, kind, context=context, proxy=good) == 200
        assert front.relayed == 1


async def test_a_proxy_that_does_not_answer_is_a_connect_error_naming_it(
    emulator: EmulatorServer,
) -> None:
    from talon_stream.demo._subprocesses import free_port

    nobody = Proxy("127.0.0.1", free_port())
    with pytest.raises(TalonTransportError, match=rf"proxy 127\.0\.0\.1:{nobody.port}"):
        await send(emulator.base_url, "native", proxy=nobody)


def test_the_native_tunnel_and_tls_over_it_work_on_uvloop(
    pki: Pki, emulator: EmulatorServer, open_proxy: ProxyProcess
) -> None:
    """The worker runs on uvloop (pytest-asyncio on asyncio's loop): its start_tls too."""

    async def through_the_proxy() -> tuple[int, list[str]]:
        async with tls_front(pki, emulator, require_client_cert=True) as front:
            context = client_ssl_context(ca_file=pki.ca_file, cert_file=pki.client_cert)
            proxy = Proxy.from_url(open_proxy.url())
            status = await send(front.url, "native", context=context, proxy=proxy)
            return status, await open_proxy.wait_for_lines(f"127.0.0.1:{front.port}", 1)

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        status, lines = runner.run(through_the_proxy())
    assert status == 200
    assert len(lines) == 1
    assert "CONNECT" in lines[0]
