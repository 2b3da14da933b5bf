"""``talon-stream what-if``: options that cannot work stop it before it reads or calls anything,
naming the option or setting to fix."""

from __future__ import annotations

from click.testing import CliRunner

from talon_stream.cli._main import EXIT_CONFIG, main

WINDOW = ["--since", "2026-12-05T10:00:00Z", "--until", "2026-12-05T11:00:00Z"]


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        main, ["what-if", "--bootstrap-servers", "127.0.0.1:1", *args], catch_exceptions=False
    )
    return result.exit_code, result.output


def test_a_window_that_ends_before_it_starts_names_the_options() -> None:
    code, output = invoke(
        "--since", "2026-12-05T11:00:00Z", "--until", "2026-12-05T10:00:00Z", "--campaigns", "12"
    )
    assert code == 2
    assert "--since must be before --until" in output


def test_campaigns_and_durations_must_read() -> None:
    code, output = invoke(*WINDOW, "--campaigns", "12,abc")
    assert code == 2
    assert "is not a comma-separated list of campaign ids" in output
    code, output = invoke(*WINDOW, "--campaigns", "12", "--lookback", "a while")
    assert code == 2
    assert "is not a duration" in output
    code, output = invoke(*WINDOW, "--campaigns", "12", "--rate", "0")
    assert code == 2
    assert "--rate" in output
    code, output = invoke("--until", "2026-12-05T11:00:00Z", "--campaigns", "12")
    assert code == 2
    assert "Missing option '--since'" in output


def test_without_an_api_key_it_says_how_to_set_one() -> None:
    code, output = invoke(*WINDOW, "--campaigns", "12")
    assert code == EXIT_CONFIG
    assert "TALON_STREAM_TALON_API_KEY" in output
