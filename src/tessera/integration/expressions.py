"""JMESPath expressions (https://jmespath.org/specification.html) and output templates.

A `map` step's `output` is a template: objects and arrays are kept as they are, each string
leaf is a JMESPath expression evaluated against the run's context, and numbers, booleans and
null are literals. A literal string is a JMESPath raw string: `'ORDER'`.

The context of a run is `{"body", "path", "query", "caller", "last", "steps"}`: the request's
JSON body, path parameters, query parameters (first value of each), the caller's identity from
the access token, the previous step's output, and the outputs of named steps.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import jmespath
from jmespath.exceptions import JMESPathError
from jmespath.parser import ParsedResult

__all__ = ["ExpressionError", "check_template", "compile_expression", "evaluate", "render"]

_MAX_EXPRESSION = 2000
_MAX_DEPTH = 32


class ExpressionError(ValueError):
    """An expression that does not compile, or fails on this run's data."""


@lru_cache(maxsize=4096)
def compile_expression(expression: str) -> ParsedResult:
    """Compile once; documents are validated with this, runs reuse the cached result."""
    if not expression.strip():
        raise ExpressionError("an expression may not be empty")
    if len(expression) > _MAX_EXPRESSION:
        raise ExpressionError(f"an expression may have at most {_MAX_EXPRESSION} characters")
    try:
        return jmespath.compile(expression)
    except JMESPathError as exc:
        raise ExpressionError(f"invalid JMESPath {expression!r}: {_first_line(exc)}") from None


def check_template(template: Any, where: str = "output", depth: int = 0) -> None:
    """Compile every expression of a template; raise `ExpressionError` naming the place."""
    if depth > _MAX_DEPTH:
        raise ExpressionError(f"{where}: nested deeper than {_MAX_DEPTH} levels")
    if isinstance(template, str):
        try:
            compile_expression(template)
        except ExpressionError as exc:
            raise ExpressionError(f"{where}: {exc}") from None
    elif isinstance(template, dict):
        for key, value in template.items():
            check_template(value, f"{where}.{key}", depth + 1)
    elif isinstance(template, list):
        for index, value in enumerate(template):
            check_template(value, f"{where}[{index}]", depth + 1)
    elif not (template is None or isinstance(template, bool | int | float)):
        raise ExpressionError(f"{where}: not a JSON value")


def evaluate(expression: str, context: dict[str, Any]) -> Any:
    """The value of one expression; raise `ExpressionError` when it fails on this data."""
    try:
        return compile_expression(expression).search(context)
    except JMESPathError as exc:  # e.g. a function applied to a value of the wrong type
        raise ExpressionError(f"{expression!r} failed: {_first_line(exc)}") from None


def render(template: Any, context: dict[str, Any]) -> Any:
    """Build a JSON document from a template (see the module docstring)."""
    if isinstance(template, str):
        return evaluate(template, context)
    if isinstance(template, dict):
        return {key: render(value, context) for key, value in template.items()}
    if isinstance(template, list):
        return [render(value, context) for value in template]
    return template


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
