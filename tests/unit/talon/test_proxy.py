"""Which proxy an origin goes through: HTTPS_PROXY / HTTP_PROXY by scheme, NO_PROXY as curl reads
it, and proxy URLs that are refused without quoting them."""

from __future__ import annotations

import pytest

from talon_stream.talon import Proxy, bypasses_proxy, proxy_for

HTTPS = "https://acme.europe-west1.talon.one"


def test_the_proxy_follows_the_scheme_of_the_origin() -> None:
    both = {"https_proxy": "http://secure:3128", "http_proxy": "http://plain:8080"}
    assert proxy_for(HTTPS, **both) == Proxy("secure", 3128)
    assert proxy_for("http://127.0.0.1:8900", **both) == Proxy("plain", 8080)
    assert proxy_for(HTTPS, http_proxy="http://plain:8080") is None
    assert proxy_for(HTTPS) is None


@pytest.mark.parametrize(
    ("host", "port", "no_proxy", "bypassed"),
    [
        ("acme.talon.one", 443, "*", True),
        ("acme.talon.one", 443, "talon.one", True),  # a domain names its subdomains
        ("acme.talon.one", 443, ".talon.one", True),
        ("talon.one", 443, ".talon.one", True),
        ("acme.talon.one", 443, "*.talon.one", True),
        ("acme.talon.one", 443, "ACME.Talon.One.", True),
        ("nottalon.one", 443, "talon.one", False),  # a suffix only at a dot
        ("acme.talon.one", 443, "other.example, talon.one", True),
        ("acme.talon.one", 443, "other.example talon.one", True),
        ("acme.talon.one", 443, "talon.one:443", True),
        ("acme.talon.one", 443, "talon.one:8443", False),
        ("10.1.2.3", 443, "10.0.0.0/8", True),
        ("10.1.2.3", 443, "10.1.2.3", True),
        ("11.1.2.3", 443, "10.0.0.0/8", False),
        ("127.0.0.1", 8900, "localhost", False),  # no implicit loopback, as curl
        ("::1", 443, "::1", True),
        ("::1", 443, "[::1]:443", True),
        ("::1", 443, "[::1]:80", False),
        ("acme.talon.one", 443, "", False),
        ("acme.talon.one", 443, ",,", False),
    ],
)
def test_no_proxy_reads_as_curl_reads_it(
    host: str, port: int, no_proxy: str, bypassed: bool
) -> None:
    assert bypasses_proxy(host, port, no_proxy) is bypassed


def test_no_proxy_uses_the_origin_port() -> None:
    proxy = "http://proxy:3128"
    assert proxy_for(HTTPS, https_proxy=proxy, no_proxy="talon.one:443") is None
    assert proxy_for(HTTPS + ":8443", https_proxy=proxy, no_proxy="talon.one:443") is not None


def test_a_proxy_url_is_parsed_with_its_credentials_kept_out_of_sight() -> None:
    proxy = Proxy.from_url("http://us%40er:p%3Ass@proxy.internal:3128")
    assert (proxy.host, proxy.port, proxy.username, proxy.password) == (
        "proxy.internal",
        3128,
        "us@er",
        "p:ss",
    )
    assert proxy.authorization == "Basic dXNAZXI6cDpzcw=="  # base64 of us@er:p:ss
    assert proxy.url == "http://proxy.internal:3128"
    assert "p:ss" not in repr(proxy)
    assert Proxy.from_url("proxy.internal").port == 1080  # no scheme: http://, curl's port
    assert Proxy.from_url("http://proxy.internal:3128").authorization is None


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://user:secret@proxy:3128", "must start with http://"),
        ("socks5://user:secret@proxy:1080", "must start with http://"),
        ("http://user:secret@proxy:99999", "port"),
        ("http://user:secret@:3128", "no host"),
    ],
)
def test_unusable_proxy_urls_are_refused_without_being_quoted(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as refused:
        Proxy.from_url(url)
    assert "secret" not in str(refused.value)
