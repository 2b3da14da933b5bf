"""Where :class:`~talon_stream.config.Settings` values come from, and in which order they win.

Highest priority first::

    arguments       load_settings(**overrides) — code and tests
    command line    --set NAME=VALUE and the explicit options of ``run`` / ``config check``
    environment     TALON_STREAM_<NAME> (and KAFKA_BOOTSTRAP_SERVERS)
    environment     KAFKA_<NAME> → kafka_config["<name>"] (librdkafka pass-through)
    config file     --config PATH or TALON_STREAM_CONFIG_FILE: TOML, keys are the field names
    defaults        the field defaults of Settings

A field set by a higher source replaces the lower ones' value whole — except ``kafka_config``,
merged property by property, so ``KAFKA_SASL_PASSWORD`` completes a ``[kafka_config]`` table of
the file and ``TALON_STREAM_KAFKA_CONFIG`` overrides single properties of either.

Values on the command line are read exactly as environment values (JSON for ``kafka_config``
and ``effect_routes``, comma-separated lists): the command-line source *is* an environment
source over the ``--set`` values.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

from pydantic import AliasChoices, SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import EnvSettingsSource, PydanticBaseSettingsSource

from talon_stream._exceptions import ConfigurationError

if TYPE_CHECKING:
    from pydantic_settings import BaseSettings

__all__ = [
    "CONFIG_FILE_VARIABLE",
    "ENV_PREFIX",
    "MERGED_FIELDS",
    "CliOverridesSource",
    "ConfigFileSource",
    "KafkaEnvSource",
    "SettingsRequest",
    "config_file_path",
    "environment_names",
    "is_sensitive",
    "kafka_properties_from_env",
    "kafka_variable",
    "layered_sources",
    "nearest",
    "normalize_cli_name",
    "origins",
    "read_config_file",
    "requested",
    "reveal",
]

ENV_PREFIX = "TALON_STREAM_"
CONFIG_FILE_VARIABLE = "TALON_STREAM_CONFIG_FILE"

#: Dict fields merged key by key across sources; every other field is replaced whole (so an
#: ``effect_routes = {}`` on the command line turns routing off whatever the environment says).
MERGED_FIELDS = frozenset({"kafka_config"})

_KAFKA_PREFIX = "KAFKA_"
#: KAFKA_* variables that are not librdkafka properties: the bootstrap servers (a field of their
#: own) and Kubernetes service links, which a Service named ``kafka`` (or ``kafka-…``) injects
#: into every pod of its namespace (KAFKA_SERVICE_HOST, KAFKA_PORT_9092_TCP_ADDR, …).
_NOT_PROPERTIES = re.compile(
    r"^KAFKA_BOOTSTRAP_SERVERS$"
    r"|_SERVICE_HOST$|_SERVICE_PORT(_[A-Z0-9_]+)?$|_PORT$|_PORT_\d+_(TCP|UDP|SCTP)(_[A-Z]+)?$"
)
#: librdkafka properties whose values are secrets (or may hold one: the OAUTHBEARER config
#: carries client secrets); never printed, logged or put in an error.
_SENSITIVE_WORDS = ("password", "secret", "key", "token", "credential")
_SENSITIVE_PROPERTIES = frozenset({"sasl.oauthbearer.config"})


def is_sensitive(prop: str) -> bool:
    """Whether the librdkafka property ``prop`` holds (or may hold) a secret."""
    lowered = prop.lower()
    return lowered in _SENSITIVE_PROPERTIES or any(word in lowered for word in _SENSITIVE_WORDS)


def reveal(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` with its :class:`SecretStr` values revealed: for librdkafka's eyes only."""
    return {
        name: value.get_secret_value() if isinstance(value, SecretStr) else value
        for name, value in config.items()
    }


def nearest(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate closest to a mistyped ``name``, if any is close enough."""
    found = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return found[0] if found else None


def _unknown(name: str, candidates: Iterable[str]) -> str:
    names = list(candidates)
    plain = normalize_cli_name(name)  # TALON_STREAM_GROUP_ID, group-id: group_id
    guess = plain if plain in names else nearest(plain, names)
    return f"unknown setting {name!r}" + (f" (did you mean {guess!r}?)" if guess else "")


def normalize_cli_name(name: str) -> str:
    """The field a ``--set`` name stands for: ``group_id``, ``group-id``, ``GROUP_ID`` and
    ``TALON_STREAM_GROUP_ID`` all mean ``group_id``."""
    lowered = name.strip().lower().replace("-", "_")
    return lowered.removeprefix(ENV_PREFIX.lower())


def kafka_properties_from_env(environ: Mapping[str, str]) -> dict[str, str]:
    """librdkafka properties of the ``KAFKA_<NAME>`` variables: ``KAFKA_SASL_MECHANISM=PLAIN``
    is ``{"sasl.mechanism": "PLAIN"}``. ``KAFKA_BOOTSTRAP_SERVERS`` and Kubernetes service-link
    variables are left out (see ``_NOT_PROPERTIES``)."""
    properties: dict[str, str] = {}
    for variable, value in sorted(environ.items()):
        upper = variable.upper()
        if not upper.startswith(_KAFKA_PREFIX) or _NOT_PROPERTIES.search(upper):
            continue
        prop = upper.removeprefix(_KAFKA_PREFIX).lower().replace("_", ".")
        if prop:
            properties[prop] = value
    return properties


def kafka_variable(prop: str) -> str:
    """The ``KAFKA_<NAME>`` variable that sets the librdkafka property ``prop``."""
    return _KAFKA_PREFIX + prop.upper().replace(".", "_")


def environment_names(field_name: str, info: FieldInfo) -> tuple[str, ...]:
    """The variables that set a field, first the canonical one."""
    alias = info.validation_alias
    if isinstance(alias, AliasChoices):
        return tuple(choice for choice in alias.choices if isinstance(choice, str))
    if isinstance(alias, str):
        return (alias,)
    return (f"{ENV_PREFIX}{field_name}".upper(),)


# --- what one load asks for ---------------------------------------------------------------------


@dataclass(frozen=True)
class SettingsRequest:
    """The inputs of one :func:`~talon_stream.config.load_settings` besides the environment: the
    config file named on the command line and the ``--set`` values (by field name)."""

    config_file: Path | None = None
    cli: Mapping[str, str] = field(default_factory=dict)


# pydantic-settings builds its sources in a classmethod that takes no arguments of ours
# (``settings_customise_sources``): the request of the load in progress travels in a context
# variable, safe across threads and tasks. Settings() without a request reads the environment
# (TALON_STREAM_CONFIG_FILE included) like before.
_REQUEST: ContextVar[SettingsRequest] = ContextVar("talon_stream_settings_request")


@contextmanager
def requested(request: SettingsRequest) -> Iterator[None]:
    """Settings created inside this block use ``request``."""
    token = _REQUEST.set(request)
    try:
        yield
    finally:
        _REQUEST.reset(token)


def config_file_path(
    explicit: Path | str | None, environ: Mapping[str, str] | None = None
) -> Path | None:
    """The config file to read: ``explicit`` (``--config``), else ``TALON_STREAM_CONFIG_FILE``."""
    if explicit is not None and str(explicit) != "":
        return Path(explicit)
    value = (os.environ if environ is None else environ).get(CONFIG_FILE_VARIABLE, "")
    return Path(value) if value else None


# --- the config file ----------------------------------------------------------------------------


def read_config_file(path: Path, settings_cls: type[BaseSettings]) -> dict[str, Any]:
    """The settings of a TOML config file, by field name.

    Tables of the dict fields may use bare dotted keys (``security.protocol = "SSL"`` under
    ``[kafka_config]``); they are flattened to the property names. A relative ``mapping_file``
    is relative to the config file's directory.

    Raises:
        ConfigurationError: the file cannot be read, is not TOML, or has a key that is no
            setting (the message names it and the nearest setting).
    """
    try:
        with path.open("rb") as stream:
            raw = tomllib.load(stream)
    except OSError as exc:
        raise ConfigurationError(
            f"config file {path} cannot be read ({exc.strerror}): check --config or "
            f"{CONFIG_FILE_VARIABLE}"
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"config file {path} is not valid TOML: {exc}") from exc
    fields = settings_cls.model_fields
    unknown = [name for name in raw if name not in fields]
    if unknown:
        problems = "; ".join(_unknown(name, fields) for name in unknown)
        raise ConfigurationError(f"config file {path}: {problems}")
    values: dict[str, Any] = {}
    for name, value in raw.items():
        if isinstance(value, dict) and _is_dict_field(fields[name]):
            value = dict(_flatten(value))
        elif _is_path_field(fields[name]) and isinstance(value, str) and value:
            value = path.parent / value
        values[name] = value
    return values


def _flatten(table: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in table.items():
        if isinstance(value, dict):
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _is_dict_field(info: FieldInfo) -> bool:
    origin = getattr(info.annotation, "__origin__", None)
    return origin is dict


def _is_path_field(info: FieldInfo) -> bool:
    return info.annotation is Path or Path in get_args(info.annotation)


# --- the sources ----------------------------------------------------------------------------------


class ConfigFileSource(PydanticBaseSettingsSource):
    """The settings of the TOML config file (nothing when there is none)."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path | None) -> None:
        super().__init__(settings_cls)
        self.path = path

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # __call__ reads the whole file at once

    def __call__(self) -> dict[str, Any]:
        return {} if self.path is None else read_config_file(self.path, self.settings_cls)


class KafkaEnvSource(PydanticBaseSettingsSource):
    """``kafka_config`` from the ``KAFKA_<NAME>`` variables."""

    def __init__(
        self, settings_cls: type[BaseSettings], environ: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(settings_cls)
        self.environ = os.environ if environ is None else environ

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        properties = kafka_properties_from_env(self.environ)
        return {"kafka_config": properties} if properties else {}


class CliOverridesSource(EnvSettingsSource):
    """The ``--set`` values (by field name), read exactly as environment variables are."""

    def __init__(self, settings_cls: type[BaseSettings], values: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        variables: dict[str, str | None] = {}
        for name, value in values.items():
            info = settings_cls.model_fields.get(name)
            if info is None:
                raise ConfigurationError(
                    f"--set {name}: {_unknown(name, settings_cls.model_fields)}"
                )
            variables[environment_names(name, info)[0].lower()] = value
        self.env_vars = variables


class _Layer(PydanticBaseSettingsSource):
    """One source, its keys turned into field names (pydantic-settings keys a field with an
    alias by the alias, whichever variable set it), and its values dropped for fields that a
    higher source already set — pydantic-settings would otherwise deep-merge dict fields."""

    def __init__(self, settings_cls: type[BaseSettings], inner: PydanticBaseSettingsSource):
        super().__init__(settings_cls)
        self.inner = inner
        self._by_key = {
            key: name
            for name, info in settings_cls.model_fields.items()
            for key in (name, *environment_names(name, info))
        }

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self.inner.get_field_value(field, field_name)

    def __call__(self) -> dict[str, Any]:
        taken = self.current_state
        values: dict[str, Any] = {}
        for key, value in self.inner().items():
            name = self._by_key.get(key, key)
            if name in MERGED_FIELDS or name not in taken:
                values[name] = value
        return values


def layered_sources(
    settings_cls: type[BaseSettings],
    init_settings: PydanticBaseSettingsSource,
    env_settings: PydanticBaseSettingsSource,
) -> tuple[PydanticBaseSettingsSource, ...]:
    """The sources of ``Settings``, highest priority first (see the module docstring)."""
    request = _REQUEST.get(SettingsRequest())
    sources = (
        init_settings,
        CliOverridesSource(settings_cls, request.cli),
        env_settings,
        KafkaEnvSource(settings_cls),
        ConfigFileSource(settings_cls, config_file_path(request.config_file)),
    )
    return tuple(_Layer(settings_cls, source) for source in sources)


# --- where a value came from ----------------------------------------------------------------------


def origins(
    settings_cls: type[BaseSettings],
    request: SettingsRequest,
    *,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """For each field set anywhere, where its winning value comes from, as a user would fix
    it: ``--set group_id``, ``TALON_STREAM_GROUP_ID``, ``group_id in talon-stream.toml``.

    ``kafka_config`` properties are listed too, as ``kafka_config.<property>``. A source that
    cannot be read is skipped (its error is reported on its own).
    """
    present = {name.lower() for name in os.environ}
    found: dict[str, str] = {}

    def note(name: str, where: str) -> None:
        found.setdefault(name, where)

    for name in overrides or {}:
        note(name, f"the argument {name}")
    for name in request.cli:
        note(name, f"--set {name}")
    for name, info in settings_cls.model_fields.items():
        for variable in environment_names(name, info):
            if variable.lower() in present:
                note(name, variable)
                break
    path = config_file_path(request.config_file)
    try:
        in_file = read_config_file(path, settings_cls) if path is not None else {}
    except ConfigurationError:
        in_file = {}
    for name in in_file:
        note(name, f"{name} in {path}")

    def properties(source: PydanticBaseSettingsSource) -> Iterable[str]:
        try:
            value = source().get("kafka_config")
        except Exception:  # noqa: BLE001 - an unreadable source is reported by load_settings
            return ()
        return value if isinstance(value, dict) else ()

    if request.cli:
        for prop in properties(CliOverridesSource(settings_cls, request.cli)):
            note(f"kafka_config.{prop}", "--set kafka_config")
    for prop in properties(EnvSettingsSource(settings_cls)):
        note(f"kafka_config.{prop}", f"{ENV_PREFIX}KAFKA_CONFIG")
    for prop in kafka_properties_from_env(os.environ):
        note(f"kafka_config.{prop}", kafka_variable(prop))
    table = in_file.get("kafka_config")
    for prop in table if isinstance(table, dict) else ():
        note(f"kafka_config.{prop}", f"kafka_config in {path}")
    return found
