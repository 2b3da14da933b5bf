"""The network-edge and key-file settings: the usual proxy variables, the TLS files, the key given
one way only, and errors that name what to fix without quoting a secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from talon_stream._exceptions import ConfigurationError, InvalidSettingsError
from talon_stream.config._settings import load_settings
from talon_stream.processing._worker import Worker
from talon_stream.talon import ApiKeyFile, proxy_for

PROXY_VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "https_proxy", "http_proxy", "no_proxy")


@pytest.fixture(autouse=True)
def _no_proxy_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_the_usual_proxy_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("https_proxy", "http://user:s3cret@proxy.internal:3128")
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.internal:8080")
    monkeypatch.setenv("NO_PROXY", "localhost,.svc.cluster.local")
    settings = load_settings(talon_api_key="k")
    proxies = settings.proxies()
    assert proxies == {
        "https_proxy": "http://user:s3cret@proxy.internal:3128",
        "http_proxy": "http://proxy.internal:8080",
        "no_proxy": "localhost,.svc.cluster.local",
    }
    assert "s3cret" not in repr(settings)
    proxy = proxy_for("https://acme.talon.one", **proxies)
    assert proxy is not None
    assert proxy.address == "proxy.internal:3128"
    assert proxy_for("http://talon.svc.cluster.local:8900", **proxies) is None


def test_the_talon_stream_proxy_variable_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://everyone:3128")
    monkeypatch.setenv("TALON_STREAM_HTTPS_PROXY", "http://ours:3128")
    assert load_settings().proxies()["https_proxy"] == "http://ours:3128"
    monkeypatch.setenv("TALON_STREAM_HTTPS_PROXY", "")
    monkeypatch.delenv("HTTPS_PROXY")
    assert load_settings().https_proxy is None


def test_an_unusable_proxy_url_is_named_not_quoted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "socks5://user:s3cret@proxy:1080")
    with pytest.raises(InvalidSettingsError) as caught:
        load_settings()
    text = str(caught.value)
    assert "HTTPS_PROXY" in text
    assert "http://" in text
    assert "s3cret" not in text


def test_the_key_and_the_key_file_together_are_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "api-key").write_text("from-file")
    monkeypatch.setenv("TALON_STREAM_TALON_API_KEY", "from-variable")
    monkeypatch.setenv("TALON_STREAM_TALON_API_KEY_FILE", str(tmp_path / "api-key"))
    with pytest.raises(InvalidSettingsError) as caught:
        load_settings()
    text = str(caught.value)
    assert "TALON_STREAM_TALON_API_KEY and TALON_STREAM_TALON_API_KEY_FILE are both set" in text
    assert "from-variable" not in text


def test_the_key_file_is_read_by_the_worker_at_start(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "api-key"
    path.write_text("from-file\n")
    monkeypatch.setenv("TALON_STREAM_TALON_API_KEY_FILE", str(path))
    monkeypatch.setenv("TALON_STREAM_TALON_API_KEY_POLL_S", "2")
    settings = load_settings()
    assert settings.require_api_key() == "from-file"
    key = Worker(settings).api_keys["default"]
    assert isinstance(key, ApiKeyFile)
    assert key.value == "from-file"
    path.unlink()
    with pytest.raises(ConfigurationError, match=r"TALON_STREAM_TALON_API_KEY_FILE .*cannot be"):
        Worker(settings)


def test_an_application_key_may_be_a_file(tmp_path: Path) -> None:
    (tmp_path / "de").write_text("de-key")
    settings = load_settings(
        talon_api_key="k",
        application_field="header:market",
        applications={"de": {"api_key_file": str(tmp_path / "de")}},
    )
    assert Worker(settings).api_keys["de"].value == "de-key"
    for wrong in ({}, {"api_key": "x", "api_key_file": str(tmp_path / "de")}):
        with pytest.raises(InvalidSettingsError, match="one of api_key and api_key_file"):
            load_settings(
                talon_api_key="k", application_field="header:m", applications={"de": wrong}
            )
    missing = load_settings(
        talon_api_key="k",
        application_field="header:m",
        applications={"de": {"api_key_file": str(tmp_path / "nope")}},
    )
    with pytest.raises(ConfigurationError, match=r"TALON_STREAM_APPLICATIONS \(de\.api_key_file\)"):
        Worker(missing)


def test_tls_files_are_checked_when_the_worker_starts(tmp_path: Path) -> None:
    with pytest.raises(InvalidSettingsError, match="CLIENT_KEY_FILE is set without"):
        load_settings(talon_api_key="k", talon_client_key_file=str(tmp_path / "key.pem"))
    settings = load_settings(talon_api_key="k", talon_ca_file=str(tmp_path / "ca.pem"))
    with pytest.raises(ConfigurationError, match=r"TALON_STREAM_TALON_CA_FILE .*cannot be read"):
        Worker(settings)
