"""How KafkaBroker reports a broker that fails, with a stand-in ``java`` (a shell script): the
error carries the end of the broker's log, a taken port is retried on others, and nothing is
left behind."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from talon_stream._exceptions import BrokerError
from talon_stream.demo._kafka import KafkaBroker


def stand_in_java(tmp_path: Path, broker: str, storage: str = "exit 0") -> str:
    """A ``java`` that runs ``storage`` for the storage tool and ``broker`` for kafka.Kafka."""
    script = tmp_path / "java"
    script.write_text(
        "#!/bin/sh\n"
        'case "$*" in\n'
        f"  *kafka.tools.StorageTool*) {storage} ;;\n"
        f"  *) {broker} ;;\n"
        "esac\n"
    )
    script.chmod(0o755)
    (tmp_path / "libs").mkdir()
    return str(script)


def leftovers() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("talon-stream-kafka-*"))


def test_a_broker_that_exits_is_reported_with_its_log(tmp_path: Path) -> None:
    java = stand_in_java(tmp_path, "echo 'ERROR Invalid configuration: boom'; exit 3")
    before = leftovers()
    broker = KafkaBroker(libs=tmp_path / "libs", java=java, start_timeout_s=10)
    with pytest.raises(BrokerError, match=r"exited with code 3; its log ends:\n.*boom"):
        broker.start()
    assert leftovers() == before
    assert broker.pid is None


def test_a_broker_that_never_answers_times_out_with_its_log(tmp_path: Path) -> None:
    java = stand_in_java(tmp_path, "echo 'WARN still waiting for the controller'; exec sleep 30")
    broker = KafkaBroker(libs=tmp_path / "libs", java=java, start_timeout_s=1)
    with pytest.raises(BrokerError, match=r"within 1s; its log ends:\n.*still waiting"):
        broker.start()
    assert broker.pid is None


def test_a_failed_format_is_reported_with_the_tools_output(tmp_path: Path) -> None:
    java = stand_in_java(tmp_path, "exit 0", storage="echo 'Log directory is not empty'; exit 1")
    with pytest.raises(BrokerError, match=r"formatting the Kafka log folder failed \(1\): Log"):
        KafkaBroker(libs=tmp_path / "libs", java=java).start()


def test_a_taken_port_is_retried_on_other_ports(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    java = stand_in_java(
        tmp_path,
        f"echo run >> {runs}; echo 'java.net.BindException: Address already in use'; exit 1",
    )
    with pytest.raises(BrokerError, match="no free port in 5 attempts"):
        KafkaBroker(libs=tmp_path / "libs", java=java, start_timeout_s=10).start()
    assert runs.read_text().count("run") == 5


def test_signals_and_restart_need_a_started_broker() -> None:
    broker = KafkaBroker()
    with pytest.raises(BrokerError, match="not running"):
        broker.freeze()
    with pytest.raises(BrokerError, match="never started"):
        broker.restart()
    with pytest.raises(BrokerError, match="not running"):
        _ = broker.bootstrap_servers
    broker.stop()  # nothing to stop, and no error
