"""The value language of mapping files: JMESPath expressions and the conversions of their values.

:class:`Expression` compiles an expression once and checks, at start-up, what jmespath would only
find out on the first record (unknown functions, wrong numbers of arguments). :func:`convert`
implements ``convert:`` (``cents``, ``number``, ``integer``, ``string``); :func:`truthy` is
JMESPath's truth, which ``when`` uses. docs/mapping.md describes them for users.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import Any, Final, Literal, get_args

import jmespath
import orjson
from jmespath.exceptions import JMESPathError
from jmespath.functions import Functions
from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

__all__ = ["CONVERSIONS", "Conversion", "Expression", "convert", "kind", "show", "truthy"]

Conversion = Literal["cents", "number", "integer", "string"]
#: The conversions a field may ask for (``convert:``).
CONVERSIONS: tuple[str, ...] = get_args(Conversion)

_FUNCTIONS: Final = Functions().FUNCTION_TABLE
_INTEGER = re.compile(r"[+-]?\d+")


class Expression:
    """A JMESPath expression, compiled once; ``str()`` gives its source.

    Compiling checks the syntax, and that every function exists and gets as many arguments as
    it takes: what jmespath would otherwise only find out on the first record.
    """

    __slots__ = ("_parsed", "source")

    def __init__(self, source: str) -> None:
        try:
            self._parsed = jmespath.compile(source)
        except JMESPathError as exc:
            raise ValueError(f'invalid JMESPath expression "{source}": {_first_line(exc)}') from exc
        for name, arguments in _functions(self._parsed.parsed):
            problem = _function_problem(name, arguments)
            if problem:
                raise ValueError(f'invalid JMESPath expression "{source}": {problem}')
        self.source = source

    def search(self, document: Any) -> Any:
        """The expression's value on ``document`` (``None`` when it gives nothing).

        Raises:
            JMESPathError: a function got an argument of the wrong type.
        """
        return self._parsed.search(document)

    def __str__(self) -> str:
        return self.source

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source_type: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(
            cls, core_schema.str_schema(min_length=1)
        )


def _first_line(exc: Exception) -> str:
    """jmespath's message without the expression it repeats on the next lines."""
    line = str(exc).splitlines()[0]
    for prefix in ("Invalid jmespath expression: ", "Bad jmespath expression: "):
        line = line.removeprefix(prefix)
    return line.removesuffix(", for expression:").removesuffix(":")


def _functions(node: Any) -> Iterator[tuple[str, int]]:
    """Every function call in a parsed JMESPath AST: (name, number of arguments)."""
    if isinstance(node, dict):
        if node.get("type") == "function_expression":
            yield node["value"], len(node.get("children", ()))
        for child in node.get("children", ()):
            yield from _functions(child)


def _function_problem(name: str, arguments: int) -> str | None:
    entry = _FUNCTIONS.get(name)
    if entry is None:
        return f"unknown function {name}(); JMESPath has {', '.join(sorted(_FUNCTIONS))}"
    signature = entry["signature"]
    variadic = bool(signature) and bool(signature[-1].get("variadic"))
    expected = len(signature)
    if arguments == expected or (variadic and arguments >= expected):
        return None
    at_least = "at least " if variadic else ""
    return f"{name}() takes {at_least}{expected} argument(s), not {arguments}"


def truthy(value: Any) -> bool:
    """JMESPath's truth: everything but null, false and empty strings, lists and objects (so 0
    is true, unlike in Python)."""
    return not (value is None or value is False or value in ("", [], {}))


def convert(value: Any, how: str) -> Any:
    """``value`` converted as ``how`` says (each element, for a list).

    Raises:
        ValueError: the value cannot be read that way; the message says why.
    """
    if isinstance(value, list):
        return [_convert_one(item, how) for item in value]
    return _convert_one(value, how)


def _convert_one(value: Any, how: str) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{kind(value)} cannot be converted")  # noqa: TRY004 - as the others
    if how == "string":
        return value if isinstance(value, str) else _number_text(value)
    if how == "number":
        return _number(value)
    whole = _whole(value)
    if how == "integer":
        return whole
    return whole / 100  # cents: minor units (a whole number) → the amount


def _number(value: int | float | str) -> int | float:
    if isinstance(value, str):
        text = value.strip()
        if _INTEGER.fullmatch(text):
            return int(text)
        if "_" in text:  # Python's float() would read "1_000"; JSON's numbers have no "_"
            raise ValueError("not a number")
        try:
            number = float(text)
        except ValueError:
            raise ValueError("not a number") from None
    else:
        number = value
    if isinstance(number, float) and not math.isfinite(number):
        raise ValueError("not a finite number")
    return number


def _whole(value: int | float | str) -> int:
    number = _number(value)
    if isinstance(number, float):
        if not number.is_integer():
            raise ValueError("not a whole number")
        return int(number)
    return number


def _number_text(value: int | float) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # 1234567.0 (an id that went through a float) → "1234567"
    return str(value)


def kind(value: Any) -> str:
    """The JSON kind of ``value``, for messages ("a string", "an object", …)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    return "a number"


def show(value: Any) -> str:
    """``value`` as (at most 80 characters of) JSON, for messages."""
    text = orjson.dumps(value, default=str).decode()
    return text if len(text) <= 80 else text[:77] + "…"
