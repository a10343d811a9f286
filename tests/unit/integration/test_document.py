"""Integration documents: what is accepted, what is refused with a named place, and secrets."""

from __future__ import annotations

import copy
import json
from importlib import resources
from typing import Any

import pytest

from tessera.integration.document import (
    REDACTED,
    ClientCredentialsAuth,
    DocumentError,
    InvokeStep,
    load_document,
    parse_document,
)
from tessera.integration.scopes import SCOPE_RUN

VALID: dict[str, Any] = {
    "code": "ORDERS",
    "version": "01.00.0000",
    "name": "Orders",
    "trigger": {"method": "post", "path": "/orders/{id}"},
    "steps": [
        {"type": "map", "output": {"orderId": "path.id", "who": "caller.user_displayname"}},
        {
            "type": "invoke",
            "name": "backend",
            "url": "https://backend.example.test/orders/{id}?src=tessera",
            "auth": {
                "type": "oauth_client_credentials",
                "token_url": "https://idp.example.test/oauth2/v1/token",
                "client_id": "app",
                "client_secret": "s3cret-value",
                "scope": "urn:example:all",
            },
        },
        {"type": "respond", "status": 201, "body": "{order: steps.backend, by: caller.sub}"},
    ],
}


def variant(**changes: Any) -> dict[str, Any]:
    doc = copy.deepcopy(VALID)
    doc.update(changes)
    return doc


def with_step(index: int, **changes: Any) -> dict[str, Any]:
    doc = copy.deepcopy(VALID)
    doc["steps"][index].update(changes)
    return doc


def test_a_valid_document_loads_with_defaults() -> None:
    doc = load_document(VALID)
    assert doc.ident == "ORDERS|01.00.0000"
    assert doc.trigger.method == "POST"  # methods are case-insensitive
    assert doc.trigger.scope == SCOPE_RUN
    invoke = doc.steps[1]
    assert isinstance(invoke, InvokeStep)
    assert invoke.method == "POST" and invoke.timeout_seconds == 10.0
    assert isinstance(invoke.auth, ClientCredentialsAuth)


def test_the_sample_integration_is_valid() -> None:
    raw = resources.files("tessera.integration").joinpath("samples/echo_order.yaml").read_bytes()
    doc = parse_document(raw, "application/yaml")
    assert doc.ident == "ECHO_ORDER|01.00.0000"
    assert [s.type for s in doc.steps] == ["map", "respond"]


def test_json_and_yaml_and_unlabelled_bodies_parse() -> None:
    raw = json.dumps(VALID).encode()
    assert parse_document(raw, "application/json; charset=utf-8").code == "ORDERS"
    assert parse_document(raw, None).code == "ORDERS"
    yaml_text = (
        b"code: YAMLY\nversion: '02.01.0003'\nname: Y\ntrigger: {method: GET, path: /}\n"
        b"steps:\n  - {type: respond, body: \"'hello'\"}\n"
    )
    assert parse_document(yaml_text, "application/yaml").version == "02.01.0003"
    assert parse_document(yaml_text, "").code == "YAMLY"


def test_secrets_are_redacted_when_shown_and_kept_when_stored() -> None:
    doc = load_document(VALID)
    shown = json.dumps(doc.public())
    assert "s3cret-value" not in shown and REDACTED in shown
    stored = doc.stored()
    assert stored["steps"][1]["auth"]["client_secret"] == "s3cret-value"
    assert load_document(stored) == doc  # the stored form loads back to the same document


def test_the_redacted_value_is_not_accepted_as_a_secret() -> None:
    redacted = load_document(VALID).public()
    with pytest.raises(DocumentError, match=r"steps\[1\]\.auth\.client_secret"):
        load_document(redacted)


@pytest.mark.parametrize(
    ("document", "place"),
    [
        pytest.param(variant(code="orders"), "code", id="lowercase-code"),
        pytest.param(variant(version="1.0"), "version", id="bad-version"),
        pytest.param(variant(name=""), "name", id="empty-name"),
        pytest.param(variant(steps=[]), "steps", id="no-steps"),
        pytest.param(variant(extra="x"), "extra", id="unknown-field"),
        pytest.param(variant(trigger={"method": "TRACE", "path": "/"}), "trigger.method", id="method"),
        pytest.param(variant(trigger={"method": "GET", "path": "orders"}), "trigger.path", id="relative-path"),
        pytest.param(
            variant(trigger={"method": "GET", "path": "/a/{id}/{id}"}), "trigger.path", id="repeated-param"
        ),
        pytest.param(
            variant(trigger={"method": "GET", "path": "/a/x{id}"}), "trigger.path", id="partial-segment"
        ),
        pytest.param(with_step(0, type="transform"), "steps[0]", id="unknown-step-type"),
        pytest.param(with_step(0, output={"a": "path.[["}), "steps[0].output", id="bad-jmespath"),
        pytest.param(with_step(0, output={"a": ""}), "steps[0].output", id="empty-expression"),
        pytest.param(with_step(1, url="ftp://x.test/"), "steps[1].url", id="not-http"),
        pytest.param(with_step(1, url="https://u:p@x.test/"), "steps[1].url", id="credentials-in-url"),
        pytest.param(with_step(1, url="https://{id}.test/"), "steps[1].url", id="placeholder-in-host"),
        pytest.param(with_step(1, auth={"type": "kerberos"}), "steps[1].auth", id="unknown-auth"),
        pytest.param(with_step(1, auth={"type": "basic", "username": "u"}), "steps[1].auth.password", id="basic-no-password"),
        pytest.param(with_step(1, headers={"Content-Length": "1"}), "steps[1].headers", id="framing-header"),
        pytest.param(with_step(1, headers={"X-A": "a\r\nX-B: b"}), "steps[1].headers", id="header-injection"),
        pytest.param(with_step(1, timeout_seconds=0), "steps[1].timeout_seconds", id="timeout"),
        pytest.param(with_step(2, status=99), "steps[2].status", id="status"),
    ],
)
def test_bad_documents_name_the_problem(document: dict[str, Any], place: str) -> None:
    with pytest.raises(DocumentError) as caught:
        load_document(document)
    fields = [e["field"] for e in caught.value.errors]
    assert any(f.startswith(place) for f in fields), (fields, caught.value.detail)
    assert place.split("[")[0] in caught.value.detail


def test_document_level_rules() -> None:
    doc = copy.deepcopy(VALID)
    doc["steps"] = [VALID["steps"][2], VALID["steps"][0]]
    with pytest.raises(DocumentError, match="respond must be the last step"):
        load_document(doc)
    with pytest.raises(DocumentError, match="is not a path parameter"):
        load_document(with_step(1, url="https://backend.example.test/{orderId}"))
    doc = copy.deepcopy(VALID)
    doc["steps"][0]["name"] = "backend"
    with pytest.raises(DocumentError, match="used twice"):
        load_document(doc)


@pytest.mark.parametrize(
    ("raw", "content_type", "message"),
    [
        (b"{not json", "application/json", "not valid JSON"),
        (b"code: [unclosed", "application/yaml", "not valid YAML"),
        (b"a: &x [1]\nb: *x\n", "application/yaml", "aliases"),
        (b"when: 2024-01-01\n", "application/yaml", "JSON cannot represent"),
        (b"[1, 2]", "application/json", "object"),
        (b"\xff\xfe", "application/json", "UTF-8"),
        (b"<xml/>", "application/xml", "application/json or application/yaml"),
        (b"[" * 100_000 + b"]" * 100_000, "application/json", "nested too deeply"),
        (b" " * (256 * 1024 + 1), "application/json", "at most"),
    ],
)
def test_unparsable_bodies_are_document_errors(raw: bytes, content_type: str, message: str) -> None:
    with pytest.raises(DocumentError, match=message):
        parse_document(raw, content_type)
