"""HTTP proxies for the Talon.One transport: which proxy an origin goes through
(``HTTPS_PROXY``, ``HTTP_PROXY`` and ``NO_PROXY``, read as curl reads them), and the CONNECT
tunnel the native client opens through it.

The native client tunnels every origin, ``http://`` ones included, with ``CONNECT host:port``;
aiohttp and httpx tunnel ``https://`` origins the same way and send ``http://`` requests to the
proxy in absolute form. Only ``http://`` proxy URLs are understood (the hop to the proxy is plain
TCP); ``user:password@`` in the URL is sent as ``Proxy-Authorization: Basic``.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar
from urllib.parse import unquote, urlsplit

__all__ = ["Proxy", "ProxyError", "bypasses_proxy", "open_tunnel", "proxy_for"]

#: The most a proxy's answer head to CONNECT may hold.
_MAX_HEAD = 64 * 1024

P = TypeVar("P", bound=asyncio.Protocol)


class ProxyError(ConnectionError):
    """The proxy could not be reached, or it refused to open the tunnel (``status`` is its
    answer's status, 0 when there was none). The message names the proxy, never its
    credentials."""

    def __init__(self, message: str, *, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Proxy:
    """An ``http://[user:password@]host[:port]`` proxy (port 1080 when none is given, as curl
    has it)."""

    host: str
    port: int
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)

    @classmethod
    def from_url(cls, url: str) -> Proxy:
        """Parse a proxy URL; a URL without a scheme is ``http://``.

        Raises:
            ValueError: not an ``http://`` URL with a host (the message never quotes the URL,
                which may hold a password).
        """
        text = url.strip()
        if "://" not in text:
            text = "http://" + text
        try:
            parts = urlsplit(text)
            port = parts.port
        except ValueError as exc:
            raise ValueError("the proxy URL's port is not a number from 0 to 65535") from exc
        if parts.scheme.lower() != "http":
            raise ValueError(
                f"proxy URLs must start with http:// ({parts.scheme}:// proxies are not supported)"
            )
        if not parts.hostname:
            raise ValueError("the proxy URL has no host")
        return cls(
            parts.hostname,
            port or 1080,
            unquote(parts.username) if parts.username is not None else None,
            unquote(parts.password or "") if parts.username is not None else None,
        )

    @property
    def address(self) -> str:
        """``host:port``: how messages name the proxy."""
        return f"{_bracketed(self.host)}:{self.port}"

    @property
    def authorization(self) -> str | None:
        """The ``Proxy-Authorization`` value, when the URL carries credentials."""
        if self.username is None:
            return None
        pair = f"{self.username}:{self.password or ''}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")

    @property
    def url(self) -> str:
        """``http://host:port``, without the credentials."""
        return f"http://{self.address}"


def proxy_for(
    origin_url: str,
    *,
    https_proxy: str | None = None,
    http_proxy: str | None = None,
    no_proxy: str | None = None,
) -> Proxy | None:
    """The proxy requests to ``origin_url`` go through: ``https_proxy`` for an ``https://``
    origin, ``http_proxy`` for an ``http://`` one, none when ``no_proxy`` names the origin.

    Raises:
        ValueError: the proxy URL that applies cannot be used (see :meth:`Proxy.from_url`).
    """
    parts = urlsplit(origin_url)
    secure = parts.scheme == "https"
    chosen = https_proxy if secure else http_proxy
    if not chosen or not parts.hostname:
        return None
    port = parts.port or (443 if secure else 80)
    if no_proxy and bypasses_proxy(parts.hostname, port, no_proxy):
        return None
    return Proxy.from_url(chosen)


def bypasses_proxy(host: str, port: int, no_proxy: str) -> bool:
    """Whether ``NO_PROXY`` (``no_proxy``) names ``host:port``: ``*`` names every host; an entry
    names a host and its subdomains (a leading ``.`` or ``*.`` changes nothing), an IP address,
    or a network in CIDR form (``10.0.0.0/8``); ``host:port`` only that port."""
    host = host.strip("[]").rstrip(".").lower()
    address = _ip(host)
    for raw in no_proxy.replace(" ", ",").split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        entry, entry_port = _split_port(entry)
        if entry_port is not None and entry_port != port:
            continue
        if address is not None:
            if _address_matches(address, entry):
                return True
            continue
        name = entry.removeprefix("*").lstrip(".").rstrip(".")
        if name and (host == name or host.endswith("." + name)):
            return True
    return False


def _split_port(entry: str) -> tuple[str, int | None]:
    """``host:port``, ``[v6]:port``, ``[v6]``, a bare IPv6 address or ``host``."""
    if entry.startswith("["):
        inside, _, rest = entry[1:].partition("]")
        return inside, int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else None
    if entry.count(":") == 1:
        name, _, port = entry.partition(":")
        if port.isdigit():
            return name, int(port)
    return entry, None


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _address_matches(address: ipaddress.IPv4Address | ipaddress.IPv6Address, entry: str) -> bool:
    try:
        network = ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return False
    return address.version == network.version and address in network


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


# --- the tunnel -----------------------------------------------------------------------------------


class _ConnectAnswer(asyncio.Protocol):
    """Reads the proxy's answer head to CONNECT; the connection is handed on after it."""

    def __init__(self, loop: asyncio.AbstractEventLoop, proxy: Proxy) -> None:
        self.head: asyncio.Future[bytes] = loop.create_future()
        self._proxy = proxy
        self._buffer = bytearray()
        self.overflow = False

    def data_received(self, data: bytes) -> None:
        if self.head.done():
            return
        self._buffer += data
        end = self._buffer.find(b"\r\n\r\n")
        if end >= 0:
            # Bytes past the head: the body of a refusal, or a proxy out of step after a 2xx.
            self.overflow = end + 4 < len(self._buffer)
            self.head.set_result(bytes(self._buffer[:end]))
        elif len(self._buffer) > _MAX_HEAD:
            self.head.set_exception(
                ProxyError(f"proxy {self._proxy.address} answered CONNECT with no end of head")
            )

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.head.done():
            self.head.set_exception(
                ProxyError(
                    f"proxy {self._proxy.address} closed the connection before answering CONNECT"
                    + (f" ({exc})" if exc else "")
                )
            )


async def open_tunnel(
    loop: asyncio.AbstractEventLoop,
    proxy: Proxy,
    host: str,
    port: int,
    protocol_factory: Callable[[], P],
    ssl_context: ssl.SSLContext | None,
) -> P:
    """A connection to ``host:port`` through ``proxy``'s CONNECT tunnel, TLS over it when
    ``ssl_context`` is given, handed to a protocol of ``protocol_factory`` (as
    ``loop.create_connection`` does).

    Raises:
        ProxyError: the proxy cannot be reached, or answered CONNECT with another status than
            2xx.
        OSError: the TLS handshake with ``host`` failed (``ssl.SSLError``).
    """
    try:
        transport, answer = await loop.create_connection(
            lambda: _ConnectAnswer(loop, proxy), proxy.host, proxy.port
        )
    except OSError as exc:
        raise ProxyError(f"cannot connect to proxy {proxy.address}: {exc}") from exc
    try:
        protocol = await _through(
            loop, transport, answer, proxy, host, port, protocol_factory, ssl_context
        )
    except BaseException:
        transport.abort()
        raise
    return protocol


async def _through(
    loop: asyncio.AbstractEventLoop,
    transport: asyncio.Transport,
    answer: _ConnectAnswer,
    proxy: Proxy,
    host: str,
    port: int,
    protocol_factory: Callable[[], P],
    ssl_context: ssl.SSLContext | None,
) -> P:
    """Ask ``proxy`` for the tunnel on ``transport`` and hand the tunnel to a new protocol."""
    authority = f"{_bracketed(host)}:{port}"
    lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
    if proxy.authorization is not None:
        lines.append(f"Proxy-Authorization: {proxy.authorization}")
    transport.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    status, reason = _status(await answer.head, proxy)
    if not 200 <= status < 300:
        hint = " (check the credentials in the proxy URL)" if status == 407 else ""
        raise ProxyError(
            f"proxy {proxy.address} refused to open a tunnel to {authority}: "
            f"HTTP {status} {reason}{hint}",
            status=status,
        )
    if answer.overflow:  # nothing may come before our TLS handshake or first request
        raise ProxyError(f"proxy {proxy.address} sent bytes after its CONNECT answer")
    protocol = protocol_factory()
    if ssl_context is None:
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        return protocol
    # TLS runs over the proxy's connection from here on; start_tls does not call
    # connection_made on the protocol it is given, so the protocol learns its transport here.
    secure = await loop.start_tls(transport, protocol, ssl_context, server_hostname=host)
    if secure is None:  # pragma: no cover - only when the transport closed meanwhile
        raise ProxyError(f"proxy {proxy.address} closed the tunnel to {authority}")
    protocol.connection_made(secure)
    return protocol


def _status(head: bytes, proxy: Proxy) -> tuple[int, str]:
    line = head.split(b"\r\n", 1)[0].decode("latin-1")
    version, _, rest = line.partition(" ")
    code, _, reason = rest.partition(" ")
    if not version.startswith("HTTP/1.") or not code.isdigit():
        raise ProxyError(f"proxy {proxy.address} answered CONNECT with no HTTP status line")
    return int(code), reason.strip()[:100]
