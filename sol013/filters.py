"""Attribute-based filtering (ETSI GS NFV-SOL 013 clause 5.2).

Grammar (after URL decoding)::

    filter     := term (";" term)*                       terms are ANDed
    term       := "(" op "," attrPath "," value ("," value)* ")"
    attrPath   := name ("/" name)*                       "/" descends into objects
    value      := unquoted | "'" (char | "''")* "'"      quote values holding , ) or '

Semantics chosen where SOL013 leaves room:

* A path that crosses arrays collects every reachable leaf value (an array leaf contributes
  its elements). ``eq in cont gt gte lt lte`` hold if any leaf satisfies them with any
  listed value; ``neq nin ncont`` hold if no leaf equals / contains any listed value, so
  they also hold when the attribute is absent.
* ``gt gte lt lte`` take exactly one value.
* Numbers compare numerically when the attribute is a JSON number and the literal parses as
  one; ``true``/``false`` compare with JSON booleans; everything else compares as strings,
  which orders ISO 8601 timestamps of the same format correctly.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Union

from pydantic import BaseModel

from sol013.problem import ApiError

_NUMBER_RE = re.compile(r"-?\d+(\.\d+)?([eE][+-]?\d+)?")
_INT_RE = re.compile(r"-?\d+")
# Characters that end an operator or attribute name.
_RESERVED = ",()';"

_Predicate = Callable[[Any, str], bool]


def _coerce(attr: Any, literal: str) -> tuple[Any, Any]:
    """The pair to compare: typed when both sides agree on a type, else both as strings."""
    if isinstance(attr, bool):
        if literal in ("true", "false"):
            return attr, literal == "true"
        return str(attr).lower(), literal
    if isinstance(attr, Enum):
        return str(attr.value), literal
    if isinstance(attr, int | float) and _NUMBER_RE.fullmatch(literal):
        # Integers stay exact: identifiers beyond 2**53 must not collide through float.
        return attr, int(literal) if _INT_RE.fullmatch(literal) else float(literal)
    return str(attr), literal


def _eq(attr: Any, literal: str) -> bool:
    left, right = _coerce(attr, literal)
    return bool(left == right)


def _ordered(compare: Callable[[Any, Any], bool]) -> _Predicate:
    def predicate(attr: Any, literal: str) -> bool:
        return compare(*_coerce(attr, literal))

    return predicate


def _contains(attr: Any, literal: str) -> bool:
    return isinstance(attr, str) and literal in attr


# op -> (positive predicate, negated?, single value only?)
_OPERATORS: dict[str, tuple[_Predicate, bool, bool]] = {
    "eq": (_eq, False, False),
    "neq": (_eq, True, False),
    "in": (_eq, False, False),
    "nin": (_eq, True, False),
    "gt": (_ordered(lambda a, b: a > b), False, True),
    "gte": (_ordered(lambda a, b: a >= b), False, True),
    "lt": (_ordered(lambda a, b: a < b), False, True),
    "lte": (_ordered(lambda a, b: a <= b), False, True),
    "cont": (_contains, False, False),
    "ncont": (_contains, True, False),
}


def _leaf_values(node: Any, path: tuple[str, ...]) -> Iterator[Any]:
    if isinstance(node, list | tuple):
        for element in node:
            yield from _leaf_values(element, path)
        return
    if not path:
        if node is not None and not isinstance(node, Mapping):
            yield node
        return
    if isinstance(node, Mapping) and path[0] in node:
        yield from _leaf_values(node[path[0]], path[1:])


@dataclass(frozen=True)
class FilterTerm:
    op: str
    path: tuple[str, ...]
    values: tuple[str, ...]

    def matches(self, doc: Mapping[str, Any]) -> bool:
        predicate, negated, _ = _OPERATORS[self.op]
        hit = any(
            predicate(leaf, value) for leaf in _leaf_values(doc, self.path) for value in self.values
        )
        return not hit if negated else hit


@dataclass(frozen=True)
class AttributeFilter:
    """A parsed SOL013 filter: all terms must match."""

    terms: tuple[FilterTerm, ...]

    def matches(self, doc: Mapping[str, Any]) -> bool:
        return all(term.matches(doc) for term in self.terms)


class _Parser:
    def __init__(self, expr: str) -> None:
        self.expr = expr
        self.pos = 0

    def fail(self, problem: str, at: int | None = None) -> ApiError:
        where = self.pos if at is None else at
        snippet = self.expr[where : where + 20] or "end of expression"
        return ApiError(
            400,
            f"invalid filter: {problem} at character {where + 1} (near {snippet!r})",
        )

    def peek(self) -> str:
        return self.expr[self.pos] if self.pos < len(self.expr) else ""

    def expect(self, char: str, what: str) -> None:
        if self.peek() != char:
            found = repr(self.peek()) if self.peek() else "end of expression"
            raise self.fail(f"expected {char!r} {what}, found {found}")
        self.pos += 1

    def parse(self) -> AttributeFilter:
        if not self.expr.strip():
            raise ApiError(400, "invalid filter: the expression is empty")
        terms = [self.term()]
        while self.peek() == ";":
            self.pos += 1
            terms.append(self.term())
        if self.pos != len(self.expr):
            raise self.fail("expected ';' between terms or end of expression")
        return AttributeFilter(tuple(terms))

    def term(self) -> FilterTerm:
        self.expect("(", "to start a term such as (eq,attribute,value)")
        op_at = self.pos
        op = self.bare_token()
        if op not in _OPERATORS:
            raise self.fail(
                f"unknown operator {op!r} (expected one of {', '.join(_OPERATORS)})", op_at
            )
        self.expect(",", f"after operator {op!r}")
        path_at = self.pos
        path = self.path()
        if self.peek() != ",":
            raise self.fail(f"expected ',' and at least one value after attribute {path!r}")
        values: list[str] = []
        while self.peek() == ",":
            self.pos += 1
            values.append(self.value())
        self.expect(")", "to close the term")
        _, _, single = _OPERATORS[op]
        if single and len(values) != 1:
            raise self.fail(f"operator {op!r} takes exactly one value, got {len(values)}", op_at)
        return FilterTerm(op, _split_path(path, lambda msg: self.fail(msg, path_at)), tuple(values))

    def bare_token(self) -> str:
        start = self.pos
        while self.pos < len(self.expr) and self.expr[self.pos] not in _RESERVED:
            self.pos += 1
        return self.expr[start : self.pos]

    def path(self) -> str:
        start = self.pos
        path = self.bare_token()
        if not path:
            raise self.fail("missing attribute name", start)
        return path

    def value(self) -> str:
        if self.peek() == "'":
            return self.quoted_value()
        start = self.pos
        # SOL013 only requires quoting for ',' ')' and "'", so ';' and '(' are plain text here.
        while self.pos < len(self.expr) and self.expr[self.pos] not in ",)":
            if self.expr[self.pos] == "'":
                raise self.fail('a value containing "\'" must be enclosed in single quotes', start)
            self.pos += 1
        if self.pos == start:
            raise self.fail("empty value (write '' for an empty string)", start)
        return self.expr[start : self.pos]

    def quoted_value(self) -> str:
        start = self.pos
        self.pos += 1
        chars: list[str] = []
        while True:
            if self.pos >= len(self.expr):
                raise self.fail("unterminated quoted value", start)
            char = self.expr[self.pos]
            self.pos += 1
            if char != "'":
                chars.append(char)
            elif self.peek() == "'":
                chars.append("'")
                self.pos += 1
            else:
                break
        if self.peek() not in (",", ")"):
            raise self.fail("expected ',' or ')' after the closing quote")
        return "".join(chars)


def _split_path(path: str, fail: Callable[[str], ApiError]) -> tuple[str, ...]:
    parts = tuple(path.split("/"))
    if any(not part or part != part.strip() for part in parts):
        raise fail(f"malformed attribute path {path!r}")
    return parts


def _unwrap(annotation: Any) -> list[Any]:
    """The concrete types an annotation may hold, looking through Optional/list/Annotated."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        return [t for arg in typing.get_args(annotation) for t in _unwrap(arg)]
    if origin in (list, tuple, set, frozenset) or (
        origin is not None and getattr(origin, "__name__", "") in ("Sequence", "Iterable")
    ):
        args = [arg for arg in typing.get_args(annotation) if arg is not Ellipsis]
        return [t for arg in args for t in _unwrap(arg)]
    return [annotation]


def _is_open_mapping(tp: Any) -> bool:
    origin = typing.get_origin(tp) or tp
    return tp is Any or origin is dict or (isinstance(origin, type) and issubclass(origin, Mapping))


def _path_exists(model: type[BaseModel], path: tuple[str, ...]) -> bool:
    head, rest = path[0], path[1:]
    for name, field in model.model_fields.items():
        if (field.serialization_alias or field.alias or name) != head:
            continue
        for tp in _unwrap(field.annotation):
            if not rest or _is_open_mapping(tp):
                return True
            if isinstance(tp, type) and issubclass(tp, BaseModel) and _path_exists(tp, rest):
                return True
        return False
    return False


def parse_filter(expr: str, *, model: type[BaseModel] | None = None) -> AttributeFilter:
    """Parses a SOL013 filter; raises ApiError(400) saying what is wrong and where."""
    parsed = _Parser(expr).parse()
    if model is not None:
        for term in parsed.terms:
            if not _path_exists(model, term.path):
                raise ApiError(400, f"unknown attribute '{'/'.join(term.path)}' in filter")
    return parsed
