"""``${{ … }}`` expressions: a strict, side-effect-free sandbox.

A playbook that points at the wrong account is worse than one that fails, so the
rules are narrow on purpose:

- only a small subset of Python expression syntax (names, ``a.b``, ``a[0]``, literals,
  comparisons, ``and``/``or``/``not``, arithmetic, ``x if c else y``, calls of the
  functions in :data:`FUNCTIONS`);
- a name, attribute or key that does not exist is an :class:`ExpressionError`, never
  a silent ``None``;
- no name or attribute starting with ``_``, no imports, no I/O;
- bounded: at most :data:`MAX_EXPRESSION_CHARS` characters, :data:`MAX_EXPRESSION_NODES` syntax
  nodes and :data:`MAX_EXPRESSION_DEPTH` levels of nesting, so a hostile playbook cannot exhaust
  the parser's recursion or the evaluator's.

``a.b`` reads the key ``b`` of the mapping ``a``; it never reaches Python attributes.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tourniquet.durations import parse_duration, resolve_instant, utc_now
from tourniquet.errors import ExpressionError

__all__ = [
    "FUNCTIONS",
    "Expression",
    "Template",
    "evaluate",
    "parse_duration",
    "parse_template",
    "references",
    "resolve_instant",
    "MAX_EXPRESSION_CHARS",
    "MAX_EXPRESSION_NODES",
    "MAX_EXPRESSION_DEPTH",
]

#: Longer than any condition or argument a playbook needs; longer ones are refused before parsing.
MAX_EXPRESSION_CHARS = 2_000
MAX_EXPRESSION_NODES = 500
MAX_EXPRESSION_DEPTH = 40

_TEMPLATE = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)
def _join(items: Sequence[Any], separator: str = ", ") -> str:
    return separator.join(str(item) for item in items)


def _pluck(items: Sequence[Mapping[str, Any]], key: str) -> list[Any]:
    """``pluck(steps.resolve.accounts, "uid")`` → the list of uids."""
    try:
        return [item[key] for item in items]
    except (KeyError, TypeError) as exc:
        raise ExpressionError(f"pluck: an item has no key {key!r}") from exc


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "len": len,
    "now": utc_now,
    "duration": parse_duration,
    "instant": resolve_instant,
    "join": _join,
    "pluck": _pluck,
    "lower": lambda s: str(s).lower(),
    "upper": lambda s: str(s).upper(),
    "str": str,
    "int": int,
    "sum": sum,
    "min": min,
    "max": max,
    "sorted": sorted,
    "unique": lambda items: list(dict.fromkeys(items)),
}

_ALLOWED_NODES: tuple[type[ast.AST], ...] = (
    ast.Expression, ast.Name, ast.Load, ast.Attribute, ast.Subscript, ast.Constant,
    ast.List, ast.Tuple, ast.Dict, ast.Compare, ast.BoolOp, ast.UnaryOp, ast.BinOp,
    ast.IfExp, ast.Call, ast.And, ast.Or, ast.Not, ast.USub, ast.UAdd, ast.Add, ast.Sub,
    ast.Mult, ast.Div, ast.Mod, ast.FloorDiv, ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt,
    ast.GtE, ast.In, ast.NotIn, ast.Is, ast.IsNot, ast.Slice,
)


@dataclass(frozen=True)
class Expression:
    """One parsed ``${{ … }}`` body."""

    source: str
    tree: ast.Expression

    @classmethod
    def parse(cls, source: str) -> "Expression":
        text = source.strip()
        if not text:
            raise ExpressionError("empty expression")
        if len(text) > MAX_EXPRESSION_CHARS:
            raise ExpressionError(f"expression of {len(text)} characters: more than MAX_EXPRESSION_CHARS "
                                  f"({MAX_EXPRESSION_CHARS}) ({text[:40]!r}…)")
        try:
            tree = ast.parse(text, mode="eval")
        except SyntaxError as exc:
            raise ExpressionError(f"invalid expression {_cut(text)}: {exc.msg}") from None
        except (RecursionError, MemoryError, ValueError):
            raise ExpressionError(f"expression nested too deeply to parse ({_cut(text)})") from None
        nodes = list(ast.walk(tree))
        if len(nodes) > MAX_EXPRESSION_NODES:
            raise ExpressionError(f"expression of {len(nodes)} terms: more than MAX_EXPRESSION_NODES "
                                  f"({MAX_EXPRESSION_NODES}) ({_cut(text)})")
        if _depth(tree) > MAX_EXPRESSION_DEPTH:
            raise ExpressionError(f"expression nested more than MAX_EXPRESSION_DEPTH ({MAX_EXPRESSION_DEPTH}) "
                                  f"levels ({_cut(text)})")
        for node in nodes:
            if not isinstance(node, _ALLOWED_NODES):
                raise ExpressionError(f"{type(node).__name__} is not allowed in expressions: {text!r}")
            if isinstance(node, ast.Name) and node.id.startswith("_"):
                raise ExpressionError(f"private name {node.id!r} is not allowed")
            if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
                raise ExpressionError(f"private attribute {node.attr!r} is not allowed")
            if isinstance(node, ast.Call):
                if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
                    shown = ast.unparse(node.func)
                    raise ExpressionError(
                        f"unknown function {shown!r} (allowed: {', '.join(sorted(FUNCTIONS))})"
                    )
                if node.keywords:
                    raise ExpressionError("keyword arguments are not allowed in expressions")
        return cls(text, tree)

    def evaluate(self, scope: Mapping[str, Any]) -> Any:
        return _Evaluator(scope, self.source).visit(self.tree.body)


def _cut(text: str, limit: int = 60) -> str:
    return repr(text) if len(text) <= limit else repr(text[:limit]) + "…"


def _depth(tree: ast.AST) -> int:
    """Nesting depth, without recursion (the tree may be deep: that is what is checked)."""
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest


@dataclass(frozen=True)
class Template:
    """A string that may hold expressions.

    A string that is exactly one ``${{ x }}`` evaluates to the value of ``x`` (a list
    stays a list); any other string has each expression's value interpolated as text.
    """

    source: str
    parts: tuple[str | Expression, ...]

    @property
    def is_single(self) -> bool:
        return len(self.parts) == 1 and isinstance(self.parts[0], Expression)

    @property
    def expressions(self) -> list[Expression]:
        return [p for p in self.parts if isinstance(p, Expression)]

    def render(self, scope: Mapping[str, Any]) -> Any:
        if self.is_single:
            return self.parts[0].evaluate(scope)  # type: ignore[union-attr]
        return "".join(
            part if isinstance(part, str) else _as_text(part.evaluate(scope)) for part in self.parts
        )


def _as_text(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return ", ".join(_as_text(v) for v in value)
    return str(value)


@functools.lru_cache(maxsize=4096)
def parse_template(text: str) -> Template:
    """The text's parts; cached, as a for_each step renders the same few templates once per item."""
    parts: list[str | Expression] = []
    position = 0
    for match in _TEMPLATE.finditer(text):
        if match.start() > position:
            parts.append(text[position:match.start()])
        parts.append(Expression.parse(match.group(1)))
        position = match.end()
    if position < len(text):
        parts.append(text[position:])
    if "${{" in "".join(p for p in parts if isinstance(p, str)):
        raise ExpressionError(f"unclosed '${{{{' in {_cut(text)}")
    return Template(text, tuple(parts))


def evaluate(value: Any, scope: Mapping[str, Any]) -> Any:
    """Render every template inside a (possibly nested) YAML value."""
    if isinstance(value, str):
        return parse_template(value).render(scope) if "${{" in value else value
    if isinstance(value, list):
        return [evaluate(v, scope) for v in value]
    if isinstance(value, dict):
        return {k: evaluate(v, scope) for k, v in value.items()}
    return value


def references(expression: Expression) -> list[tuple[str, ...]]:
    """Every dotted path the expression reads, e.g. ``("steps", "resolve", "accounts")``.

    Used at load time to reject names that do not exist before anything runs.
    """
    found: list[tuple[str, ...]] = []

    def path_of(node: ast.AST) -> tuple[str, ...] | None:
        if isinstance(node, ast.Name):
            return (node.id,)
        if isinstance(node, ast.Attribute):
            base = path_of(node.value)
            return base + (node.attr,) if base is not None else None
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            base = path_of(node.value)
            if base is not None and isinstance(node.slice.value, str):
                return base + (node.slice.value,)
            return base
        return None

    def visit(node: ast.AST) -> None:
        if isinstance(node, (ast.Name, ast.Attribute, ast.Subscript)):
            path = path_of(node)
            if path is not None:
                found.append(path)
                if isinstance(node, ast.Subscript):
                    visit(node.slice)
                return
        if isinstance(node, ast.Call):
            for arg in node.args:
                visit(arg)
            return
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(expression.tree.body)
    return found


class _Evaluator:
    def __init__(self, scope: Mapping[str, Any], source: str) -> None:
        self.scope = scope
        self.source = source

    def fail(self, message: str) -> ExpressionError:
        return ExpressionError(f"{message} (in {self.source!r})")

    def visit(self, node: ast.AST) -> Any:
        method = getattr(self, f"visit_{type(node).__name__}", None)
        if method is None:
            raise self.fail(f"{type(node).__name__} is not allowed")
        return method(node)

    def visit_Constant(self, node: ast.Constant) -> Any:
        return node.value

    def visit_Name(self, node: ast.Name) -> Any:
        if node.id in ("true", "True"):
            return True
        if node.id in ("false", "False"):
            return False
        if node.id in ("null", "None"):
            return None
        if node.id not in self.scope:
            raise self.fail(f"name {node.id!r} is not defined (known: {', '.join(sorted(self.scope))})")
        return self.scope[node.id]

    def visit_Attribute(self, node: ast.Attribute) -> Any:
        return self._key(self.visit(node.value), node.attr, ast.unparse(node.value))

    def visit_Subscript(self, node: ast.Subscript) -> Any:
        container = self.visit(node.value)
        if isinstance(node.slice, ast.Slice):
            lower = self.visit(node.slice.lower) if node.slice.lower else None
            upper = self.visit(node.slice.upper) if node.slice.upper else None
            if not isinstance(container, (list, tuple, str)):
                raise self.fail(f"{ast.unparse(node.value)} cannot be sliced")
            return container[lower:upper]
        return self._key(container, self.visit(node.slice), ast.unparse(node.value))

    def _key(self, container: Any, key: Any, shown: str) -> Any:
        if isinstance(container, Mapping):
            if key not in container:
                known = ", ".join(sorted(str(k) for k in container)) or "nothing"
                raise self.fail(f"{shown} has no {key!r} (it has: {known})")
            return container[key]
        if isinstance(container, (list, tuple)) and isinstance(key, int):
            if not -len(container) <= key < len(container):
                raise self.fail(f"{shown}[{key}] is out of range (length {len(container)})")
            return container[key]
        raise self.fail(f"{shown} is a {type(container).__name__}, it has no {key!r}")

    def visit_List(self, node: ast.List) -> list[Any]:
        return [self.visit(e) for e in node.elts]

    def visit_Tuple(self, node: ast.Tuple) -> list[Any]:
        return [self.visit(e) for e in node.elts]

    def visit_Dict(self, node: ast.Dict) -> dict[Any, Any]:
        if any(k is None for k in node.keys):
            raise self.fail("** in a mapping is not allowed")
        return {self.visit(k): self.visit(v) for k, v in zip(node.keys, node.values)}  # type: ignore[arg-type]

    def visit_BoolOp(self, node: ast.BoolOp) -> Any:
        if isinstance(node.op, ast.And):
            result: Any = True
            for value in node.values:
                result = self.visit(value)
                if not result:
                    return result
            return result
        result = False
        for value in node.values:
            result = self.visit(value)
            if result:
                return result
        return result

    def visit_UnaryOp(self, node: ast.UnaryOp) -> Any:
        operand = self.visit(node.operand)
        if isinstance(node.op, ast.Not):
            return not operand
        if isinstance(node.op, ast.USub):
            return -operand
        return +operand

    def visit_BinOp(self, node: ast.BinOp) -> Any:
        left, right = self.visit(node.left), self.visit(node.right)
        operations: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
            ast.Add: lambda a, b: a + b,
            ast.Sub: lambda a, b: a - b,
            ast.Mult: lambda a, b: a * b,
            ast.Div: lambda a, b: a / b,
            ast.FloorDiv: lambda a, b: a // b,
            ast.Mod: lambda a, b: a % b,
        }
        if isinstance(node.op, ast.Mult) and (
            isinstance(left, (str, list)) or isinstance(right, (str, list))
        ):
            raise self.fail("repeating strings or lists is not allowed")
        try:
            return operations[type(node.op)](left, right)
        except (TypeError, ZeroDivisionError, OverflowError) as exc:
            raise self.fail(str(exc)) from exc

    def visit_Compare(self, node: ast.Compare) -> bool:
        operations: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
            ast.Eq: lambda a, b: a == b,
            ast.NotEq: lambda a, b: a != b,
            ast.Lt: lambda a, b: a < b,
            ast.LtE: lambda a, b: a <= b,
            ast.Gt: lambda a, b: a > b,
            ast.GtE: lambda a, b: a >= b,
            ast.In: lambda a, b: a in b,
            ast.NotIn: lambda a, b: a not in b,
            ast.Is: lambda a, b: a is b,
            ast.IsNot: lambda a, b: a is not b,
        }
        left = self.visit(node.left)
        for op, comparator in zip(node.ops, node.comparators):
            right = self.visit(comparator)
            try:
                if not operations[type(op)](left, right):
                    return False
            except TypeError as exc:
                raise self.fail(str(exc)) from exc
            left = right
        return True

    def visit_IfExp(self, node: ast.IfExp) -> Any:
        return self.visit(node.body) if self.visit(node.test) else self.visit(node.orelse)

    def visit_Call(self, node: ast.Call) -> Any:
        name = node.func.id  # type: ignore[attr-defined]  # checked in Expression.parse
        args = [self.visit(a) for a in node.args]
        try:
            return FUNCTIONS[name](*args)
        except ExpressionError:
            raise
        except (TypeError, ValueError) as exc:
            raise self.fail(f"{name}(): {exc}") from exc
