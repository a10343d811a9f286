"""The map step: JMESPath templates over the run's context, and path templates."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tessera.integration.document import load_document
from tessera.integration.expressions import ExpressionError, check_template, render
from tessera.integration.outbound import Connections
from tessera.integration.paths import TemplateError, fill_url, parse_path
from tessera.integration.runner import FlowRequest, MappingError, context_of, run_steps
from tessera.integration.store import Caller

CLIENT = Caller(sub="app-1", sub_type="client", client_id="app-1", user_displayname=None)
ALICE = Caller(sub="u-7", sub_type="user", client_id="web", user_displayname="Alice Example")


def context(**request: Any) -> dict[str, Any]:
    return context_of(FlowRequest(request.pop("caller", ALICE), **request))


def test_a_template_builds_a_document_from_path_query_body_and_caller() -> None:
    ctx = context(
        path={"id": "42"},
        query={"channel": "web"},
        body={"lines": [{"sku": "A", "qty": 2}, {"sku": "B", "qty": 1}]},
    )
    template = {
        "orderId": "path.id",
        "channel": "query.channel",
        "skus": "body.lines[].sku",
        "count": "length(body.lines)",
        "who": {"name": "caller.user_displayname", "type": "caller.sub_type"},
        "kind": "'ORDER'",
        "literal": [1, True, None, 2.5],
        "missing": "body.nothing",
    }
    assert render(template, ctx) == {
        "orderId": "42",
        "channel": "web",
        "skus": ["A", "B"],
        "count": 2,
        "who": {"name": "Alice Example", "type": "user"},
        "kind": "ORDER",
        "literal": [1, True, None, 2.5],
        "missing": None,
    }


def test_the_context_names_the_caller_with_oracle_claim_names() -> None:
    ctx = context(caller=CLIENT)
    assert ctx["caller"] == {
        "sub": "app-1",
        "sub_type": "client",
        "client_id": "app-1",
        "user_displayname": None,
    }
    assert ctx["last"] is None and ctx["steps"] == {}


def test_check_template_names_the_bad_expression() -> None:
    with pytest.raises(ExpressionError, match=r"output\.a\.b\[1\]"):
        check_template({"a": {"b": ["path.id", "foo(("]}})


def test_an_expression_failing_on_the_data_is_an_expression_error() -> None:
    with pytest.raises(ExpressionError, match="failed"):
        render({"n": "length(body.count)"}, context(body={"count": 3}))


def test_steps_see_the_previous_output_and_named_steps() -> None:
    doc = load_document(
        {
            "code": "CHAIN",
            "version": "01.00.0000",
            "name": "Chain",
            "trigger": {"method": "POST", "path": "/things/{id}"},
            "steps": [
                {"type": "map", "name": "first", "output": {"id": "path.id", "n": "body.n"}},
                {"type": "map", "output": {"double": "[last.n, last.n]", "was": "last.id"}},
                {"type": "respond", "status": 202, "headers": {"X-A": "b"},
                 "body": "{first: steps.first, second: last}"},
            ],
        }
    )
    result = asyncio.run(run_map_only(doc, FlowRequest(ALICE, {"id": "7"}, {}, {"n": 3})))
    assert result.status == 202 and result.headers == {"X-A": "b"}
    assert result.body == {"first": {"id": "7", "n": 3}, "second": {"double": [3, 3], "was": "7"}}


def test_a_failing_expression_names_its_step() -> None:
    doc = load_document(
        {
            "code": "BAD",
            "version": "01.00.0000",
            "name": "Bad",
            "trigger": {"method": "POST", "path": "/"},
            "steps": [{"type": "map", "name": "shape", "output": {"n": "abs(body)"}}],
        }
    )
    with pytest.raises(MappingError, match="step 'shape'"):
        asyncio.run(run_map_only(doc, FlowRequest(ALICE, {}, {}, "text")))


def test_without_respond_the_last_output_is_answered_with_200() -> None:
    doc = load_document(
        {
            "code": "NORESPOND",
            "version": "01.00.0000",
            "name": "x",
            "trigger": {"method": "GET", "path": "/"},
            "steps": [{"type": "map", "output": {"q": "query"}}],
        }
    )
    result = asyncio.run(run_map_only(doc, FlowRequest(CLIENT, {}, {"a": "1"}, None)))
    assert (result.status, result.body) == (200, {"q": {"a": "1"}})


async def run_map_only(doc: Any, request: FlowRequest) -> Any:
    async with httpx.AsyncClient() as http:  # no invoke step: never used
        return await run_steps(doc, request, Connections(http))


@pytest.mark.parametrize(
    ("template", "path", "params"),
    [
        ("/orders/{id}", "/orders/42", {"id": "42"}),
        ("/orders/{id}", "/orders/42/", {"id": "42"}),
        ("/orders/{id}/lines/{line}", "/orders/a-b/lines/3", {"id": "a-b", "line": "3"}),
        ("/", "/", {}),
        ("/ping", "/ping", {}),
        ("/orders/{id}", "/orders", None),
        ("/orders/{id}", "/orders/1/2", None),
        ("/orders/{id}", "/ORDERS/1", None),
        ("/ping", "/pingx", None),
    ],
)
def test_path_templates_match_whole_segments(
    template: str, path: str, params: dict[str, str] | None
) -> None:
    assert parse_path(template).match(path) == params


@pytest.mark.parametrize("template", ["orders", "/a/{id}x", "/a/{1d}", "/a//b", "/a/{x}/{x}"])
def test_bad_path_templates_are_refused(template: str) -> None:
    with pytest.raises(TemplateError):
        parse_path(template)


def test_url_templates_encode_parameters() -> None:
    assert (
        fill_url("https://b.test/orders/{id}?x={id}", {"id": "a/b?c#d"})
        == "https://b.test/orders/a%2Fb%3Fc%23d?x=a%2Fb%3Fc%23d"
    )
