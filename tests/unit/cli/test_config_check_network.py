"""``config check`` and the network-edge settings: the key file, the TLS files and the proxy each
get a line that says what to fix, and the key check goes the way the worker would."""

from __future__ import annotations

from pathlib import Path

import pytest

from talon_stream.demo._subprocesses import free_port
from tests.unit.cli.test_config_check import API_KEY, by_name, check, everything

PROXY_PASSWORD = "proxy-Passw0rd-xyz"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The suite's fixture cleared every TALON_STREAM_*, KAFKA_* and proxy variable."""
    monkeypatch.setenv("TALON_STREAM_TALON_API_KEY", API_KEY)
    return monkeypatch


def test_a_key_file_is_read_and_checked(
    clean_environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_environment.delenv("TALON_STREAM_TALON_API_KEY")
    (tmp_path / "api-key").write_text(API_KEY + "\n")
    report = check({"talon_api_key_file": str(tmp_path / "api-key")})
    results = by_name(report)
    assert results["talon.one"].status == "pass"
    assert "talon.one network" not in results  # nothing of the network is set
    assert API_KEY not in everything(report)


def test_a_key_file_that_cannot_be_read_is_named(
    clean_environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_environment.delenv("TALON_STREAM_TALON_API_KEY")
    result = by_name(check({"talon_api_key_file": str(tmp_path / "missing")}))["talon.one"]
    assert result.status == "fail"
    assert result.fix is not None
    assert "TALON_STREAM_TALON_API_KEY_FILE" in result.fix
    assert "cannot be read" in result.fix


def test_the_key_and_its_file_together_fail_the_configuration(tmp_path: Path) -> None:
    (tmp_path / "api-key").write_text("other")
    [only] = check({"talon_api_key_file": str(tmp_path / "api-key")}).checks
    assert only.name == "configuration"
    assert only.status == "fail"
    assert "are both set" in only.detail


def test_a_ca_file_that_cannot_be_read_fails_the_network_line(tmp_path: Path) -> None:
    results = by_name(check({"talon_ca_file": str(tmp_path / "ca.pem")}))
    network = results["talon.one network"]
    assert network.status == "fail"
    assert "TALON_STREAM_TALON_CA_FILE" in network.detail
    assert "cannot be read" in network.detail
    assert results["talon.one"].status == "skip"


def test_a_client_key_without_its_certificate_fails_the_configuration(tmp_path: Path) -> None:
    [only] = check({"talon_client_key_file": str(tmp_path / "key.pem")}).checks
    assert only.status == "fail"
    assert "TALON_STREAM_TALON_CLIENT_CERT_FILE" in only.detail


def test_the_proxy_is_named_and_used_for_the_key_check(
    clean_environment: pytest.MonkeyPatch,
) -> None:
    port = free_port()  # nothing listens: the check must go there, and say so
    clean_environment.setenv("HTTPS_PROXY", f"http://user:{PROXY_PASSWORD}@127.0.0.1:{port}")
    report = check()
    results = by_name(report)
    assert results["talon.one network"].status == "pass"
    assert f"through proxy 127.0.0.1:{port}" in results["talon.one network"].detail
    assert results["talon.one"].status == "fail"
    assert "cannot be reached" in results["talon.one"].detail
    assert PROXY_PASSWORD not in everything(report)

    clean_environment.setenv("NO_PROXY", ".talon.one")
    results = by_name(check())
    assert "no proxy" in results["talon.one network"].detail
    assert results["talon.one"].status == "pass"
