"""Configuration sources: precedence (arguments > command line > environment > KAFKA_* > config
file > defaults), the TOML config file, the KAFKA_* librdkafka pass-through, and secrets that
never show in a repr, a dump or an error."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import SecretStr

from talon_stream._exceptions import ConfigurationError, InvalidSettingsError
from talon_stream.cli._main import EXIT_CONFIG, main
from talon_stream.config._settings import load_settings
from talon_stream.config._sources import is_sensitive, kafka_properties_from_env, normalize_cli_name

ROOT = Path(__file__).resolve().parents[3]
PASSWORD = "s3cret-Passw0rd-xyz"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No TALON_STREAM_* or KAFKA_* variable of the machine takes part."""
    for name in list(os.environ):
        if name.upper().startswith(("TALON_STREAM_", "KAFKA_")):
            monkeypatch.delenv(name)
    return monkeypatch


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --- precedence ---------------------------------------------------------------------------------


def test_file_then_environment_then_command_line_then_arguments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write(
        tmp_path / "talon-stream.toml",
        'group_id = "file"\neffects_topic = "file.effects"\ndlq_topic = "file.dlq"\n'
        'max_in_flight = 7\ninput_topics = ["f1", "f2"]\n',
    )
    monkeypatch.setenv("TALON_STREAM_EFFECTS_TOPIC", "env.effects")
    monkeypatch.setenv("TALON_STREAM_DLQ_TOPIC", "env.dlq")
    monkeypatch.setenv("TALON_STREAM_GROUP_ID", "env")

    settings = load_settings(
        config_file=config, cli={"dlq_topic": "cli.dlq", "group_id": "cli"}, group_id="argument"
    )

    assert settings.max_in_flight == 7  # only the file sets it
    assert settings.input_topics == ("f1", "f2")
    assert settings.effects_topic == "env.effects"  # environment over file
    assert settings.dlq_topic == "cli.dlq"  # command line over environment
    assert settings.group_id == "argument"  # arguments over everything
    assert settings.commit_interval_s == 1.0  # nobody sets it: the default


def test_the_config_file_variable_names_the_file_and_config_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from_variable = write(tmp_path / "a.toml", 'group_id = "from-variable"\n')
    explicit = write(tmp_path / "b.toml", 'group_id = "explicit"\n')
    monkeypatch.setenv("TALON_STREAM_CONFIG_FILE", str(from_variable))
    assert load_settings().group_id == "from-variable"
    assert load_settings(config_file=explicit).group_id == "explicit"


def test_bootstrap_servers_kafka_variable_beats_the_file_and_loses_to_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write(tmp_path / "c.toml", 'bootstrap_servers = "file:9092"\n')
    assert load_settings(config_file=config).bootstrap_servers == "file:9092"
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "env:9092")
    assert load_settings(config_file=config).bootstrap_servers == "env:9092"
    cli = {"bootstrap_servers": "cli:9092"}
    assert load_settings(config_file=config, cli=cli).bootstrap_servers == "cli:9092"
    assert load_settings(bootstrap_servers="arg:9092").bootstrap_servers == "arg:9092"


def test_a_dict_setting_is_replaced_whole_not_merged(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TALON_STREAM_EFFECT_ROUTES", '{"env.route": ["setDiscount"]}')
    assert load_settings().effect_routes == {"env.route": ["setDiscount"]}
    # "{}" turns routing off, whatever a lower source says.
    assert load_settings(cli={"effect_routes": "{}"}).effect_routes == {}
    assert load_settings(effect_routes={}).effect_routes == {}


def test_command_line_values_are_read_like_environment_values() -> None:
    settings = load_settings(
        cli={
            "input_topics": "a, b",
            "max_in_flight": "64",
            "dry_run": "true",
            "effect_routes": '{"r": ["addFreeItem"]}',
            "max_requests_per_s": "12.5",
        }
    )
    assert settings.input_topics == ("a", "b")
    assert settings.max_in_flight == 64
    assert settings.dry_run is True
    assert settings.effect_routes == {"r": ["addFreeItem"]}
    assert settings.max_requests_per_s == 12.5


# --- the config file ----------------------------------------------------------------------------


def test_unknown_keys_in_the_file_are_named_with_the_nearest_setting(tmp_path: Path) -> None:
    config = write(
        tmp_path / "typo.toml",
        'grup_id = "x"\nTALON_STREAM_DLQ_TOPIC = "y"\nfrobnicate = 1\n',
    )
    with pytest.raises(ConfigurationError) as caught:
        load_settings(config_file=config)
    text = str(caught.value)
    assert str(config) in text
    assert "unknown setting 'grup_id' (did you mean 'group_id'?)" in text
    assert "unknown setting 'TALON_STREAM_DLQ_TOPIC' (did you mean 'dlq_topic'?)" in text
    assert "unknown setting 'frobnicate'" in text


def test_a_missing_or_broken_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"missing\.toml cannot be read"):
        load_settings(config_file=tmp_path / "missing.toml")
    broken = write(tmp_path / "broken.toml", "group_id = \n")
    with pytest.raises(ConfigurationError, match=r"broken\.toml is not valid TOML.*line 1"):
        load_settings(config_file=broken)


def test_kafka_tables_take_dotted_keys_and_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    config = write(
        tmp_path / "conf" / "talon-stream.toml",
        'mapping_file = "mappings/shop.yaml"\n'
        "[kafka_config]\n"
        'security.protocol = "SASL_SSL"\n'
        '"sasl.mechanism" = "PLAIN"\n'
        "socket.keepalive.enable = true\n"
        "[effect_routes]\n"
        '"shop.pricing" = ["setDiscount*"]\n',
    )
    settings = load_settings(config_file=config)
    assert settings.kafka_config == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "PLAIN",
        "socket.keepalive.enable": True,
    }
    assert settings.effect_routes == {"shop.pricing": ["setDiscount*"]}
    assert settings.mapping_file == tmp_path / "conf" / "mappings" / "shop.yaml"


# --- errors name where the value was set ------------------------------------------------------


def test_invalid_values_are_named_where_they_were_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write(tmp_path / "bad.toml", 'max_in_flight = "lots"\n')
    monkeypatch.setenv("TALON_STREAM_DISPATCH", "sideways")
    with pytest.raises(InvalidSettingsError) as caught:
        load_settings(config_file=config, cli={"rate_burst": "0"})
    problems = dict(caught.value.problems)
    assert problems[f"max_in_flight in {config}"].startswith("Input should be a valid integer")
    assert problems["TALON_STREAM_DISPATCH"] == "Input should be 'keyed' or 'partition'"
    assert problems["--set rate_burst"] == "Input should be greater than or equal to 1"
    assert "sideways" not in str(caught.value)


def test_json_that_does_not_parse_is_named() -> None:
    with pytest.raises(InvalidSettingsError, match=r"--set kafka_config: not valid JSON \(Exp"):
        load_settings(cli={"kafka_config": "{security.protocol: SSL"})


def test_an_unknown_command_line_name_suggests_the_nearest() -> None:
    with pytest.raises(ConfigurationError, match=r"--set max_inflight: .*'max_in_flight'"):
        load_settings(cli={"max_inflight": "3"})
    assert normalize_cli_name("TALON_STREAM_Max-In-Flight") == "max_in_flight"


# --- KAFKA_* pass-through ---------------------------------------------------------------------


def test_kafka_variables_become_librdkafka_properties() -> None:
    environ = {
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_MECHANISM": "PLAIN",
        "KAFKA_SSL_CA_LOCATION": "/etc/ca.pem",
        "KAFKA_BOOTSTRAP_SERVERS": "kafka:9092",  # a setting of its own
        # Kubernetes service links of a Service named "kafka": not librdkafka properties.
        "KAFKA_SERVICE_HOST": "10.0.0.7",
        "KAFKA_SERVICE_PORT": "9092",
        "KAFKA_SERVICE_PORT_BROKER": "9092",
        "KAFKA_PORT": "tcp://10.0.0.7:9092",
        "KAFKA_PORT_9092_TCP_ADDR": "10.0.0.7",
        "TALON_STREAM_GROUP_ID": "g",
    }
    assert kafka_properties_from_env(environ) == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "PLAIN",
        "ssl.ca.location": "/etc/ca.pem",
    }


def test_kafka_config_merges_property_by_property(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write(
        tmp_path / "k.toml",
        '[kafka_config]\nsecurity.protocol = "SSL"\nclient.id = "file"\nsasl.username = "file"\n',
    )
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KAFKA_CLIENT_ID", "kafka-variable")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", PASSWORD)
    monkeypatch.setenv("TALON_STREAM_KAFKA_CONFIG", '{"client.id": "talon-stream-variable"}')

    settings = load_settings(config_file=config, cli={"kafka_config": '{"linger.ms": 1}'})

    consumer = settings.consumer_config()
    assert consumer["security.protocol"] == "SASL_SSL"  # KAFKA_* over the file
    assert consumer["client.id"] == "talon-stream-variable"  # TALON_STREAM_KAFKA_CONFIG wins
    assert consumer["sasl.username"] == "file"
    assert consumer["sasl.password"] == PASSWORD  # revealed for librdkafka only
    assert consumer["linger.ms"] == 1
    assert settings.producer_config()["sasl.password"] == PASSWORD
    assert settings.kafka_client_config()["bootstrap.servers"] == settings.bootstrap_servers


# --- secrets ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prop", "secret"),
    [
        ("sasl.password", True),
        ("ssl.key.password", True),
        ("ssl.key.pem", True),
        ("sasl.oauthbearer.client.secret", True),
        ("sasl.oauthbearer.config", True),
        ("sasl.username", False),
        ("security.protocol", False),
        ("ssl.ca.location", False),
    ],
)
def test_which_properties_are_secret(prop: str, secret: bool) -> None:
    assert is_sensitive(prop) is secret


def test_secrets_never_show_in_repr_or_dumps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", PASSWORD)
    monkeypatch.setenv("TALON_STREAM_KAFKA_CONFIG", '{"ssl.key.password": "k-' + PASSWORD + '"}')
    monkeypatch.setenv("TALON_STREAM_TALON_API_KEY", "api-" + PASSWORD)
    settings = load_settings()
    assert isinstance(settings.kafka_config["sasl.password"], SecretStr)
    for text in (
        repr(settings),
        str(settings),
        str(settings.model_dump()),
        settings.model_dump_json(),
        repr(settings.kafka_config),
    ):
        assert PASSWORD not in text


def test_secrets_never_show_in_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "TALON_STREAM_KAFKA_CONFIG", '{"sasl.password": ["' + PASSWORD + '"], "linger.ms": null}'
    )
    with pytest.raises(InvalidSettingsError) as caught:
        load_settings()
    assert "TALON_STREAM_KAFKA_CONFIG (sasl.password)" in dict(caught.value.problems)
    assert PASSWORD not in str(caught.value)
    assert PASSWORD not in str(caught.value.__cause__)  # the chained pydantic error too


# --- the command line -------------------------------------------------------------------------


def test_run_reports_an_invalid_set_value_and_exits_2(tmp_path: Path) -> None:
    config = write(tmp_path / "run.toml", 'talon_api_key = "' + PASSWORD + '"\n')
    result = CliRunner().invoke(
        main, ["run", "--config", str(config), "--set", "max_in_flight=0", "--log-level", "error"]
    )
    assert result.exit_code == EXIT_CONFIG
    assert "--set max_in_flight: Input should be greater than or equal to 1" in result.output
    assert PASSWORD not in result.output


def test_run_refuses_a_set_without_a_value_and_a_contradiction() -> None:
    result = CliRunner().invoke(main, ["run", "--set", "max_in_flight"])
    assert result.exit_code == 2
    assert "is not NAME=VALUE" in result.output
    result = CliRunner().invoke(main, ["run", "--set", "group_id=a", "--group-id", "b"])
    assert result.exit_code == 2
    assert "contradicts --group-id" in result.output
