"""Apache Kafka's jars from Maven Central, cached per version, and whether this machine runs them.

``apache_kafka/pom.xml`` beside this module pins the version (:data:`KAFKA_VERSION`). Maven copies
its runtime dependencies once into ``$XDG_CACHE_HOME/talon-stream/kafka-<version>/libs`` (else
``~/.cache/…``); a ``complete`` marker is written only after a successful copy, and a lock file
makes a second process wait for the first one's fetch instead of starting its own.
"""

from __future__ import annotations

import fcntl
import functools
import os
import re
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path

from talon_stream._exceptions import BrokerError

__all__ = [
    "KAFKA_VERSION",
    "MIN_JAVA",
    "cache_root",
    "java_major",
    "java_version",
    "kafka_libs",
    "kafka_runnable",
    "resource_text",
]

#: The oldest Java that Kafka 4's broker runs on.
MIN_JAVA = 17
_POM_NS = {"m": "http://maven.apache.org/POM/4.0.0"}
_FETCH_TIMEOUT_S = 900.0
_MARKER = "complete"


def resource_text(name: str) -> str:
    """A file of ``apache_kafka/`` (the POM, the log4j2 configuration)."""
    return resources.files("talon_stream.demo").joinpath("apache_kafka", name).read_text("utf-8")


def _pinned_version() -> str:
    root = ET.fromstring(resource_text("pom.xml"))  # noqa: S314 - our own file
    version = root.findtext("m:properties/m:kafka.version", namespaces=_POM_NS)
    if not version:
        raise BrokerError("apache_kafka/pom.xml has no <kafka.version> property")
    return version.strip()


#: The ``org.apache.kafka:kafka_2.13`` version the POM pins.
KAFKA_VERSION = _pinned_version()


def java_major(version_output: str) -> int | None:
    """The major version in what ``java -version`` prints (``"17.0.15"`` → 17, ``"1.8.0"`` → 8)."""
    found = re.search(r'version "(\d+)(?:\.(\d+))?', version_output)
    if found is None:
        return None
    major = int(found.group(1))
    return int(found.group(2) or 0) if major == 1 else major


@functools.cache
def java_version(java: str = "java") -> int | None:
    """The major version of ``java`` on PATH, or ``None`` when there is none (or it fails)."""
    if shutil.which(java) is None:
        return None
    try:
        done = subprocess.run(  # noqa: S603 - a fixed program
            [java, "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return java_major(done.stderr + done.stdout)


def cache_root(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CACHE_HOME/talon-stream``, else ``~/.cache/talon-stream``."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_CACHE_HOME", "").strip()
    return (Path(base) if base else Path.home() / ".cache") / "talon-stream"


def kafka_runnable(
    *,
    java: Callable[[], int | None] = java_version,
    which: Callable[[str], str | None] = shutil.which,
    cached: Callable[[], bool] | None = None,
) -> bool:
    """Whether Apache Kafka can run here: Java 17 or later, and Maven on PATH to fetch the jars
    (or the jars already fetched)."""
    major = java()
    if major is None or major < MIN_JAVA:
        return False
    have_jars = cached if cached is not None else _libs_complete
    return which("mvn") is not None or have_jars()


def _libs_complete(version: str = KAFKA_VERSION) -> bool:
    return (cache_root() / f"kafka-{version}" / _MARKER).is_file()


def kafka_libs(
    *,
    cache: Path | None = None,
    fetch: Callable[[Path, Path], None] | None = None,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """The folder of the pinned Kafka's jars, fetched with Maven on first use; ``progress``
    (default: standard error) hears when a fetch starts and ends, as it may take a minute.

    Raises:
        BrokerError: Maven is missing or failed (the message has the end of its output).
    """
    folder = cache or cache_root() / f"kafka-{KAFKA_VERSION}"
    libs, marker = folder / "libs", folder / _MARKER
    if marker.is_file():
        return libs
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process's fetch: wait for it, then reuse it
        if marker.is_file():
            return libs
        partial = folder / "libs.partial"
        shutil.rmtree(partial, ignore_errors=True)
        shutil.rmtree(libs, ignore_errors=True)
        pom = folder / "pom.xml"
        pom.write_text(resource_text("pom.xml"), "utf-8")
        say = progress or _to_stderr
        say(f"fetching Apache Kafka {KAFKA_VERSION}'s jars with Maven into {folder} (once)")
        started = time.monotonic()
        (fetch or _maven_copy)(pom, partial)
        if not any(partial.glob(f"kafka_2.13-{KAFKA_VERSION}.jar")):
            raise BrokerError(f"Maven copied no kafka_2.13-{KAFKA_VERSION}.jar into {partial}")
        jars = list(partial.glob("*.jar"))
        size_mb = sum(jar.stat().st_size for jar in jars) / 1e6
        say(f"fetched {len(jars)} jars ({size_mb:.0f} MB) in {time.monotonic() - started:.0f} s")
        partial.rename(libs)
        marker.write_text("\n".join(sorted(p.name for p in libs.iterdir())) + "\n", "utf-8")
    return libs


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _maven_copy(pom: Path, into: Path) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerError(
            "Apache Kafka's jars are not cached and Maven (mvn) is not on PATH to fetch them; "
            "install Maven, or use the embedded broker (TALON_STREAM_BROKER=embedded)"
        )
    command = [
        mvn, "-B", "-q", "-f", str(pom),
        "org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies",
        "-DincludeScope=runtime", f"-DoutputDirectory={into}",
    ]  # fmt: skip
    try:
        done = subprocess.run(  # noqa: S603 - Maven with fixed arguments
            command, capture_output=True, text=True, timeout=_FETCH_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise BrokerError(f"Maven did not fetch Kafka within {_FETCH_TIMEOUT_S:.0f}s") from exc
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip()[-2000:]
        raise BrokerError(f"Maven could not fetch Apache Kafka {KAFKA_VERSION}: {output}")
