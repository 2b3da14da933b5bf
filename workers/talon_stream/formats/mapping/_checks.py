"""Start-up checks of a mapping file (talon_stream.formats.mapping._mappings), and the messages
that say what to fix.

* :func:`check_fields` and :func:`required_problems` hold a rule's ``fields`` against the
  canonical event models (:mod:`talon_stream.core._events`): every name must be a canonical field
  (free-form
  objects such as ``attributes`` take any name), ``each`` must build a list of objects, and the
  fields an event type requires must be built and not optional.
* :class:`UniqueKeyLoader` reads YAML refusing a key given twice; :func:`location` and
  :func:`config_message` turn pydantic's errors into ``mapping "…", rule "…", fields.x: …``.
"""

from __future__ import annotations

import types
from collections.abc import Hashable, Mapping
from typing import Annotated, Any, Protocol, Union, get_args, get_origin

import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo

__all__ = [
    "EACH_TAG",
    "EXPR_TAG",
    "TAGS",
    "VALUE_TAG",
    "FieldSpecLike",
    "UniqueKeyLoader",
    "check_fields",
    "config_message",
    "fields_of",
    "location",
    "required_problems",
    "yaml_problem",
]

# The tags of the three spellings of a field, as pydantic puts them in error locations.
EXPR_TAG, VALUE_TAG, EACH_TAG = "<expression>", "<value>", "<each>"
TAGS = frozenset((EXPR_TAG, VALUE_TAG, EACH_TAG))


class FieldSpecLike(Protocol):
    """What the checks need of a field of a rule (talon_stream.formats.mapping._mappings's
    ValueSpec and EachSpec)."""

    @property
    def may_be_absent(self) -> bool:
        """Whether the field may be left out of the event."""
        ...

    @property
    def item_fields(self) -> Mapping[str, FieldSpecLike] | None:
        """The fields of each item, for a list built with ``each``; ``None`` otherwise."""
        ...


# --- fields against the canonical models -----------------------------------------------------


def fields_of(model: type[BaseModel]) -> dict[str, FieldInfo]:
    """A canonical model's fields by their camelCase names (``type`` is the rule's own)."""
    return {info.alias or name: info for name, info in model.model_fields.items() if name != "type"}


def _shape(annotation: Any) -> tuple[str, type[BaseModel] | None]:
    """What a canonical field holds: ``model`` (its class), ``list`` or ``dict`` (with the model
    of their items, if they are models), or ``value``."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _shape(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        options = [arg for arg in get_args(annotation) if arg is not type(None)]
        return _shape(options[0]) if len(options) == 1 else ("value", None)
    if origin in (list, dict):
        kind, inner = _shape(get_args(annotation)[-1])
        return origin.__name__, inner if kind == "model" else None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "model", annotation
    return "value", None


def check_fields(
    model: type[BaseModel] | None, fields: Mapping[str, FieldSpecLike], at: str
) -> None:
    """Check that every dotted name in ``fields`` is a field of ``model`` (free-form objects such
    as ``attributes`` take any name), that none overlaps another, and that ``each`` builds
    lists; raise ValueError saying which name is wrong and what is expected."""
    for name in fields:
        parts = name.split(".")
        for depth in range(1, len(parts)):
            outer = ".".join(parts[:depth])
            if outer in fields:
                raise ValueError(
                    f'fields "{at}{outer}" and "{at}{name}" overlap: build the whole object or '
                    "its fields, not both"
                )
    for name, spec in fields.items():
        parts = name.split(".")
        if "" in parts:
            raise ValueError(f'field "{at}{name}": a name has an empty part')
        kind, inner = ("model", model) if model is not None else ("free", None)
        for depth, part in enumerate(parts):
            container = (at + ".".join(parts[:depth])).rstrip(".") or "(the event)"
            if kind == "free":  # attributes and the like: any name goes
                break
            if kind == "dict":  # a key of a map (any name); its value is ``inner``
                kind = "model" if inner is not None else "free"
                continue
            if kind == "list":
                raise ValueError(
                    f'field "{at}{name}": {container} is a list: build it with '
                    "{each: …, fields: …}"
                )
            if kind == "value" or inner is None:
                raise ValueError(f'field "{at}{name}": {container} is a single value')
            known = fields_of(inner)
            if part not in known:
                raise ValueError(
                    f'field "{at}{name}": unknown field {part!r}; {container} has '
                    f"{', '.join(known)}"
                )
            kind, inner = _shape(known[part].annotation)
            if kind == "dict" and inner is None:
                kind = "free"
        item_fields = spec.item_fields
        if item_fields is not None:
            if kind not in ("list", "free"):
                raise ValueError(f'field "{at}{name}" is not a list: {{each: …}} builds lists')
            if kind == "list" and inner is None:
                raise ValueError(
                    f'field "{at}{name}" is a list of values, not of objects: build it with '
                    "an expression (such as `discount_codes[].code`), not {each: …}"
                )
            check_fields(inner, item_fields, f"{at}{name}[].")
            if inner is not None:
                problems = required_problems(inner, item_fields, f"{at}{name}[].")
                if problems:
                    raise ValueError(f'each item of "{at}{name}" needs ' + "; ".join(problems))


def required_problems(
    model: type[BaseModel],
    fields: Mapping[str, FieldSpecLike],
    at: str,
    extra_required: tuple[str, ...] = (),
) -> list[str]:
    """The required fields of ``model`` that ``fields`` does not build, or may leave out."""
    problems: list[str] = []
    for alias, info in fields_of(model).items():
        if not (info.is_required() or alias in extra_required):
            continue
        spec = fields.get(alias)
        if spec is not None:
            if spec.may_be_absent:
                problems.append(f'"{at}{alias}", which cannot be optional')
            continue
        nested = {
            name[len(alias) + 1 :]: each
            for name, each in fields.items()
            if name.startswith(alias + ".")
        }
        kind, inner = _shape(info.annotation)
        if kind == "model" and inner is not None:  # name the fields it lacks, deepest first
            deeper = required_problems(inner, nested, f"{at}{alias}.")
            problems.extend(deeper or ([] if nested else [f'"{at}{alias}": add it to fields']))
        elif not nested:
            problems.append(f'"{at}{alias}": add it to fields')
    return problems


# --- reading the file and describing its errors ---------------------------------------------


class UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key twice in one mapping (YAML would keep the last one and
    silently drop the first field)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, Hashable) and key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    f"{key!r} is given twice",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def yaml_problem(exc: yaml.YAMLError) -> str:
    """What is wrong with a YAML text, and where, on one line."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return f"{exc.problem} (line {mark.line + 1}, column {mark.column + 1})"
    return str(exc)


def location(loc: tuple[int | str, ...], raw: Any) -> str:
    """``mapping "shopify-carts", rule "cart-updated", fields."payload.cartItems".convert``
    from pydantic's ``('mappings', 0, 'rules', 0, 'fields', 'payload.cartItems', …)``."""
    named: list[str] = []
    path: list[str] = []
    node = raw
    previous: int | str = ""
    for part in loc:
        if part in TAGS:
            previous = part
            continue
        if previous == EXPR_TAG and part == "expr":
            continue  # the short form has no `expr` key
        child = _child(node, part)
        if isinstance(part, int) and previous in ("mappings", "rules") and path == [previous]:
            label = "mapping" if previous == "mappings" else "rule"
            name = child.get("name") if isinstance(child, dict) else None
            path.clear()
            named.append(f'{label} "{name}"' if isinstance(name, str) else f"{label} #{part + 1}")
        elif isinstance(part, int):
            path.append(f"[{part}]")
        else:
            path.append(f'"{part}"' if "." in part or not part else part)
        node, previous = child, part
    text = ".".join(path).replace(".[", "[")
    return ", ".join([*named, text] if text else named) or "(the file)"


def _child(node: Any, part: int | str) -> Any:
    if isinstance(node, dict):
        return node.get(part)
    if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
        return node[part]
    return None


def config_message(error: Any, options: Mapping[str, type[BaseModel]]) -> str:
    """What to fix, from one pydantic error of the file; ``options`` says which model the
    options under each location key belong to, to list them when one is unknown."""
    if error["type"] == "extra_forbidden":
        owner = _owner(error["loc"], options)
        known = f": expected one of {', '.join(owner.model_fields)}" if owner else ""
        return f"unknown option {error['loc'][-1]!r}{known}"
    if error["type"] == "missing":
        return "missing"
    return str(error["msg"]).removeprefix("Value error, ")


def _owner(
    loc: tuple[int | str, ...], options: Mapping[str, type[BaseModel]]
) -> type[BaseModel] | None:
    """The model an unknown option was given to, from the location of the error."""
    for part in reversed(loc[:-1]):
        if isinstance(part, int):
            continue
        return options.get(part)
    return options.get("")
