"""Declarative mappings: a shop's own JSON documents → the canonical event envelope.

A YAML file (``TALON_STREAM_MAPPING_FILE``, documented in ``docs/mapping.md``) lists *mappings*.
Each applies to the input topics it names (other topics keep the canonical format) and holds an
ordered list of *rules*. A rule recognises one kind of document with ``when``, a JMESPath
expression (the first rule whose ``when`` is truthy wins), says which canonical ``type`` the
document becomes, and builds each field of the event from a JMESPath expression, a constant, or a
list built item by item (``each``), with a few explicit conversions (``cents``, ``number``,
``integer``, ``string``). The document built is then validated by the canonical event models
(:mod:`talon_stream.core._events`): a mapped record meets exactly the checks a canonical record
meets.

The file is read once, at start-up: it is parsed into the pydantic models below, every expression
is compiled then, and the field names are checked against the canonical models. A broken file
raises :class:`~talon_stream.ConfigurationError` naming the file, the mapping, the rule and
what to fix. Per record, a document no rule recognises, a required field whose expression gives
nothing, a value a conversion cannot read or an invalid event raises
:class:`~talon_stream.MappingError` (the record goes to the DLQ) naming the mapping, the
rule, the field and the expression.

:mod:`talon_stream.formats.mapping._values` holds the expressions and conversions,
:mod:`talon_stream.formats.mapping._checks`
the start-up checks and the messages that say what to fix.
"""

from __future__ import annotations

from collections.abc import Mapping as MappingType
from pathlib import Path
from typing import Annotated, Any, Final

import orjson
import yaml
from jmespath.exceptions import JMESPathError
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from talon_stream._exceptions import ConfigurationError, DecodeError, MappingError
from talon_stream.core._events import EVENT_MODELS, EVENT_TYPES, Event, validate_event
from talon_stream.formats.mapping._checks import (
    EACH_TAG,
    EXPR_TAG,
    VALUE_TAG,
    UniqueKeyLoader,
    check_fields,
    config_message,
    location,
    required_problems,
    yaml_problem,
)
from talon_stream.formats.mapping._values import (
    CONVERSIONS,
    Conversion,
    Expression,
    convert,
    kind,
    show,
    truthy,
)

__all__ = [
    "CONVERSIONS",
    "EachSpec",
    "Expression",
    "MappingFile",
    "Mappings",
    "Rule",
    "SourceMapping",
    "ValueSpec",
    "load_mappings",
    "parse_mappings",
]

_NOTHING: Final = object()


# --- the file's models -----------------------------------------------------------------------


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_Where = tuple[str, str]  # (mapping name, rule name), for error messages


class ValueSpec(_Spec):
    """One value: ``{expr: …}`` (a plain string is the short form) or ``{const: …}``."""

    #: Where the value comes from in the document.
    expr: Expression | None = None
    #: A fixed value instead (any YAML value).
    const: Any = None
    #: A conversion of what ``expr`` gave (applied to each element of a list).
    convert: Conversion | None = None
    #: When ``expr`` gives nothing: leave the field out instead of failing.
    optional: bool = False
    #: When ``expr`` gives nothing: this value (as it is, not converted).
    default: Any = None

    @model_validator(mode="after")
    def _one_source(self) -> ValueSpec:
        has_const = "const" in self.model_fields_set
        if self.expr is None and not has_const:
            raise ValueError("give `expr` (a JMESPath expression) or `const` (a value)")
        if self.expr is not None and has_const:
            raise ValueError("give `expr` or `const`, not both")
        if has_const and self.model_fields_set & {"convert", "optional", "default"}:
            raise ValueError("`convert`, `optional` and `default` go with `expr`, not `const`")
        return self

    @property
    def may_be_absent(self) -> bool:
        """Whether the field may be left out of the event (``optional`` and no ``default``)."""
        return self.optional and "default" not in self.model_fields_set

    @property
    def item_fields(self) -> None:
        """A single value has no items."""
        return None

    def evaluate(self, document: Any, where: _Where, field: str) -> Any:
        """The field's value, or ``_NOTHING`` to leave it out.

        Raises:
            MappingError: the expression failed, gave nothing for a required field, or gave a
                value ``convert`` cannot read.
        """
        expression = self.expr
        if expression is None:
            return self.const
        value = _search(expression, document, where, field)
        if value is None:
            if "default" in self.model_fields_set:
                return self.default
            if self.optional:
                return _NOTHING
            raise _error("gave nothing", where, field, expression)
        if self.convert is not None:
            try:
                value = convert(value, self.convert)
            except ValueError as exc:
                raise _error(
                    f"gave {show(value)}: {exc} (convert: {self.convert})",
                    where,
                    field,
                    expression,
                ) from exc
        return value


class EachSpec(_Spec):
    """A list of objects: one per element of the list ``each`` gives, each built from ``fields``
    evaluated against that element."""

    each: Expression
    fields: dict[str, FieldSpec] = Field(min_length=1)
    #: When ``each`` gives nothing: leave the list out instead of failing.
    optional: bool = False

    _plan: _Plan = PrivateAttr()

    def model_post_init(self, context: Any, /) -> None:
        self._plan = _plan(self.fields)

    @property
    def may_be_absent(self) -> bool:
        """Whether the list may be left out of the event (``optional``)."""
        return self.optional

    @property
    def item_fields(self) -> dict[str, ValueSpec | EachSpec]:
        """How each item of the list is built."""
        return self.fields

    def evaluate(self, document: Any, where: _Where, field: str) -> Any:
        """The list, or ``_NOTHING`` to leave it out.

        Raises:
            MappingError: ``each`` gave nothing (and the list is required) or not a list, or an
                element's field failed.
        """
        items = _search(self.each, document, where, field)
        if items is None:
            if self.optional:
                return _NOTHING
            raise _error("gave nothing", where, field, self.each)
        if not isinstance(items, list):
            raise _error(f"gave {kind(items)}, not a list", where, field, self.each)
        return [_build(self._plan, item, where, f"{field}[{n}].") for n, item in enumerate(items)]


def _expression_shorthand(value: Any) -> Any:
    return {"expr": value}


def _spec_tag(value: Any) -> str | None:
    if isinstance(value, str):
        return EXPR_TAG
    if isinstance(value, dict):
        return EACH_TAG if "each" in value else VALUE_TAG
    if isinstance(value, ValueSpec):
        return VALUE_TAG
    if isinstance(value, EachSpec):
        return EACH_TAG
    return None


FieldSpec = Annotated[
    Annotated[ValueSpec, BeforeValidator(_expression_shorthand), Tag(EXPR_TAG)]
    | Annotated[ValueSpec, Tag(VALUE_TAG)]
    | Annotated[EachSpec, Tag(EACH_TAG)],
    Discriminator(
        _spec_tag,
        custom_error_type="field_spec",
        custom_error_message=(
            "a field is a JMESPath expression (a string: quote it), {expr: …}, {const: …} "
            "or {each: …, fields: …}"
        ),
    ),
]
_Plan = tuple[tuple[tuple[str, ...], str, ValueSpec | EachSpec], ...]
EachSpec.model_rebuild()


class Rule(_Spec):
    """Recognises one kind of document and builds one canonical event type from it."""

    name: str = Field(min_length=1)
    #: Recognises the documents of this rule (truthy in JMESPath's sense); none: every document.
    when: Expression | None = None
    type: str
    #: Canonical field (``payload.cartItems``, …) → how to build it.
    fields: dict[str, FieldSpec] = Field(min_length=1)

    _plan: _Plan = PrivateAttr()

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value not in EVENT_TYPES:
            raise ValueError(
                f"unknown event type {value!r}; expected one of {', '.join(EVENT_TYPES)}"
            )
        return value

    @model_validator(mode="after")
    def _fields_fit_the_type(self) -> Rule:
        if "type" in self.fields:
            raise ValueError("`type` is the rule's own option, not one of its `fields`")
        model = EVENT_MODELS[self.type]
        check_fields(model, self.fields, "")
        ids = "sessionId" if self.type.startswith(("cart.", "order.")) else "profileId"
        problems = required_problems(model, self.fields, "", extra_required=(ids,))
        if problems:
            raise ValueError(f"a {self.type} event needs " + "; ".join(problems))
        return self

    def model_post_init(self, context: Any, /) -> None:
        self._plan = _plan(self.fields)

    def matches(self, document: Any, mapping: str) -> bool:
        """Whether ``when`` recognises ``document``.

        Raises:
            MappingError: the ``when`` expression failed on this document.
        """
        when = self.when
        if when is None:
            return True
        return truthy(_search(when, document, (mapping, self.name), "when"))

    def apply(self, document: Any, mapping: str) -> Event:
        """Build and validate this rule's event from ``document``.

        Raises:
            MappingError: a field cannot be built, or the event built is invalid.
        """
        where = (mapping, self.name)
        built = _build(self._plan, document, where, "")
        built["type"] = self.type
        try:
            return validate_event(built)
        except DecodeError as exc:
            raise MappingError(str(exc), mapping=mapping, rule=self.name) from exc


class SourceMapping(_Spec):
    """The rules for the documents of some topics, tried in order."""

    name: str = Field(min_length=1)
    topics: list[Annotated[str, Field(min_length=1)]] = Field(min_length=1)
    rules: list[Rule] = Field(min_length=1)

    @model_validator(mode="after")
    def _rules_are_distinct_and_reachable(self) -> SourceMapping:
        names = [rule.name for rule in self.rules]
        doubles = sorted({name for name in names if names.count(name) > 1})
        if doubles:
            raise ValueError(f"two rules are named {', '.join(doubles)}: rule names must differ")
        for position, rule in enumerate(self.rules[:-1]):
            if rule.when is None:
                later = ", ".join(r.name for r in self.rules[position + 1 :])
                raise ValueError(
                    f"rule {rule.name!r} has no `when`, so it takes every document and the rules "
                    f"after it ({later}) can never match: give it a `when` or move it last"
                )
        return self

    def apply(self, document: Any) -> Event:
        """The event the first matching rule builds from ``document``.

        Raises:
            MappingError: no rule recognises the document, or the rule that does fails.
        """
        for rule in self.rules:
            if rule.matches(document, self.name):
                return rule.apply(document, self.name)
        tried = ", ".join(f'{rule.name} (when "{rule.when}")' for rule in self.rules)
        raise MappingError(f"no rule recognises this document; tried {tried}", mapping=self.name)


class MappingFile(_Spec):
    """The whole file: ``mappings``, each with its own topics."""

    mappings: list[SourceMapping] = Field(min_length=1)

    @model_validator(mode="after")
    def _one_mapping_per_topic(self) -> MappingFile:
        names = [mapping.name for mapping in self.mappings]
        doubles = sorted({name for name in names if names.count(name) > 1})
        if doubles:
            raise ValueError(f"two mappings are named {', '.join(doubles)}: names must differ")
        owner: dict[str, str] = {}
        for mapping in self.mappings:
            for topic in mapping.topics:
                if topic in owner and owner[topic] != mapping.name:
                    raise ValueError(
                        f"topic {topic!r} is in mappings {owner[topic]!r} and {mapping.name!r}: "
                        "a topic belongs to one mapping (put all its rules in that one)"
                    )
                owner[topic] = mapping.name
        return self


# --- the compiled file -----------------------------------------------------------------------


class Mappings:
    """A mapping file, ready to use: which topics it maps and how to decode their records."""

    def __init__(self, file: MappingFile, *, source: str = "<mapping file>") -> None:
        self.file = file
        #: Where the file came from, for messages.
        self.source = source
        self._by_topic = {topic: mapping for mapping in file.mappings for topic in mapping.topics}
        #: The topics whose records are mapped; records of other topics are canonical events.
        self.topics: frozenset[str] = frozenset(self._by_topic)

    def decode(self, topic: str, value: bytes | str | None) -> Event:
        """Parse a record value of a mapped ``topic`` and map it to its event.

        Raises:
            DecodeError: the value is empty or not JSON.
            MappingError: the document cannot be mapped (see :meth:`apply`).
            KeyError: ``topic`` is not mapped.
        """
        mapping = self._by_topic[topic]
        if not value:
            raise DecodeError("the record has no value (a JSON document is required)")
        try:
            document = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise DecodeError(f"not valid JSON: {exc}") from exc
        return mapping.apply(document)

    def apply(self, topic: str, document: Any) -> Event:
        """Map an already parsed ``document`` of ``topic`` to its event.

        Raises:
            MappingError: no rule recognises the document, an expression of a required field
                gave nothing or failed, a conversion cannot read a value, or the event built is
                invalid; the message names the mapping, rule, field and expression.
            KeyError: ``topic`` is not mapped.
        """
        return self._by_topic[topic].apply(document)


def load_mappings(path: str | Path) -> Mappings:
    """Read and compile the mapping file at ``path``.

    Raises:
        ConfigurationError: the file cannot be read, is not YAML, or is not a valid mapping file;
            the message names the file, the mapping, the rule and what to fix.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise ConfigurationError(
            f"mapping file {path} cannot be read ({reason}): check TALON_STREAM_MAPPING_FILE"
        ) from exc
    return parse_mappings(text, source=str(path))


def parse_mappings(text: str, *, source: str = "<mapping file>") -> Mappings:
    """Compile a mapping file given as YAML text (``source`` names it in messages).

    Raises:
        ConfigurationError: as :func:`load_mappings`.
    """
    try:
        raw = yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigurationError(
            f"mapping file {source} is not valid YAML: {yaml_problem(exc)}"
        ) from exc
    if raw is None:
        raise ConfigurationError(f"mapping file {source} is empty: it needs a `mappings:` list")
    try:
        file = MappingFile.model_validate(raw)
    except ValidationError as exc:
        lines = [
            f"  {location(error['loc'], raw)}: {config_message(error, _OPTIONS)}"
            for error in exc.errors(include_url=False)
        ]
        raise ConfigurationError(
            f"mapping file {source} is invalid (see docs/mapping.md):\n" + "\n".join(lines)
        ) from exc
    return Mappings(file, source=source)


# --- building an event -----------------------------------------------------------------------


def _plan(fields: MappingType[str, ValueSpec | EachSpec]) -> _Plan:
    return tuple((tuple(name.split(".")), name, spec) for name, spec in fields.items())


def _build(plan: _Plan, document: Any, where: _Where, at: str) -> dict[str, Any]:
    """The object ``plan`` builds from ``document``; dotted names make nested objects."""
    built: dict[str, Any] = {}
    for path, name, spec in plan:
        value = spec.evaluate(document, where, at + name)
        if value is _NOTHING:
            continue
        target = built
        for part in path[:-1]:
            target = target.setdefault(part, {})
        target[path[-1]] = value
    return built


def _search(expression: Expression, document: Any, where: _Where, field: str) -> Any:
    try:
        return expression.search(document)
    except JMESPathError as exc:
        raise _error(f"failed: {exc}", where, field, expression) from exc


def _error(problem: str, where: _Where, field: str, expression: Expression) -> MappingError:
    return MappingError(
        f'expression "{expression}" {problem}',
        mapping=where[0],
        rule=where[1],
        field=field,
        expression=str(expression),
    )


#: Which model's options are given under each key of an error location (for "unknown option").
_OPTIONS: dict[str, type[BaseModel]] = {
    "": MappingFile,
    "mappings": SourceMapping,
    "rules": Rule,
    VALUE_TAG: ValueSpec,
    EACH_TAG: EachSpec,
}
