"""The shape of the code in src/: short functions, and routes held by module-level handlers.

A function longer than about 80 lines does more than one thing; a route registered on a nested
function is a closure factory, whose per-application objects should come from `app.state`
instead (docs/architecture.md).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
MAX_LINES = 80
_ROUTE_METHODS = frozenset({"get", "post", "put", "patch", "delete", "head", "options", "route"})
# Calls whose second argument (or `endpoint=`) is a route's handler.
_ROUTE_CALLS = frozenset(
    {"Route", "APIRoute", "WebSocketRoute", "add_api_route", "add_route", "add_websocket_route"}
)

Function = ast.FunctionDef | ast.AsyncFunctionDef


def _modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(SRC.rglob("*.py")):
        name = path.relative_to(SRC).as_posix()
        yield name, ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _functions(tree: ast.AST) -> Iterator[Function]:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


def _length(fn: Function) -> int:
    first = min([fn.lineno, *(d.lineno for d in fn.decorator_list)])
    return (fn.end_lineno or fn.lineno) - first + 1


def _is_route_decorator(decorator: ast.expr) -> bool:
    """`@router.get(...)`, `@app.post(...)`, `@api.route(...)` and the like."""
    return (
        isinstance(decorator, ast.Call)
        and isinstance(decorator.func, ast.Attribute)
        and decorator.func.attr in _ROUTE_METHODS
    )


def _callee(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def _nested_routes(outer: Function) -> Iterator[str]:
    """Nested functions of `outer` registered as routes: decorated, or given to `Route(...)`,
    `router.add_api_route(...)` and the like."""
    nested = {fn.name: fn for fn in _functions(outer) if fn is not outer}
    for fn in nested.values():
        if any(_is_route_decorator(d) for d in fn.decorator_list):
            yield fn.name
    for node in ast.walk(outer):
        if isinstance(node, ast.Call) and _callee(node) in _ROUTE_CALLS:
            handlers = [*node.args[1:2], *(k.value for k in node.keywords if k.arg == "endpoint")]
            for arg in handlers:
                if isinstance(arg, ast.Name) and arg.id in nested:
                    yield arg.id


def long_functions() -> list[str]:
    return [
        f"{name}:{fn.lineno} {fn.name} ({_length(fn)} lines)"
        for name, tree in _modules()
        for fn in _functions(tree)
        if _length(fn) > MAX_LINES
    ]


def closure_routes() -> list[str]:
    found = set()
    for name, tree in _modules():
        for fn in _functions(tree):
            found.update(f"{name}: {fn.name} -> {route}" for route in _nested_routes(fn))
    return sorted(found)


def test_no_function_in_src_is_longer_than_80_lines() -> None:
    assert long_functions() == []


def test_no_route_is_a_nested_function_of_a_factory() -> None:
    assert closure_routes() == []


def test_the_checks_find_what_they_look_for() -> None:
    # The checks above must be able to fail: a factory holding routes, a long function.
    factory = ast.parse(
        "def routes(svc):\n"
        "    @router.get('/a')\n"
        "    async def a(): ...\n"
        "    async def b(request): ...\n"
        "    async def c(request): ...\n"
        "    router.add_api_route('/c', c)\n"
        "    return [Route('/b', b), Route('/c', endpoint=b)]\n"
        "def long():\n" + "    x = 1\n" * MAX_LINES
    )
    outer = next(fn for fn in _functions(factory) if fn.name == "routes")
    assert sorted(set(_nested_routes(outer))) == ["a", "b", "c"]
    assert [fn.name for fn in _functions(factory) if _length(fn) > MAX_LINES] == ["long"]
