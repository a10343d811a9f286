"""The admin API's OpenAPI description: a response schema for every operation, errors as
RFC 9457 problems, and response models that describe the views field for field."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel

from tessera.domain.model import (
    AuditEvent,
    BrowserSession,
    Client,
    ClientKind,
    Consent,
    Grant,
    KeyState,
    Resource,
    SecretHash,
    SigningKey,
    User,
)
from tessera.manage import views
from tessera.web.admin import schemas
from tessera.web.admin.api import admin_app
from tessera.web.problems import problem_body

T = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
PROBLEM_REF = "#/components/schemas/Problem"


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return admin_app("https://id.test").openapi()


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
    ]


def _resolves(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref") or schema.get("items", {}).get("$ref")
    assert ref, schema
    return spec["components"]["schemas"][ref.rsplit("/", 1)[1]]  # type: ignore[no-any-return]


def test_every_admin_operation_has_a_response_schema(spec: dict[str, Any]) -> None:
    operations = _operations(spec)
    assert len(operations) >= 30
    for method, path, operation in operations:
        success = [s for s in operation["responses"] if s.startswith("2")]
        assert success, (method, path)
        for status in success:
            schema = operation["responses"][status]["content"]["application/json"]["schema"]
            assert _resolves(spec, schema)["properties"], (method, path, status)


def test_every_admin_error_is_documented_as_a_problem_and_none_as_422(
    spec: dict[str, Any],
) -> None:
    for method, path, operation in _operations(spec):
        responses = operation["responses"]
        assert "422" not in responses, (method, path)
        assert {"401", "403", "503"} <= set(responses), (method, path)
        for status, response in responses.items():
            if int(status) >= 400:
                assert response["content"] == {
                    "application/problem+json": {"schema": {"$ref": PROBLEM_REF}}
                }, (method, path, status)
        if "requestBody" in operation:
            assert {"400", "413"} <= set(responses), (method, path)
    assert "HTTPValidationError" not in spec["components"]["schemas"]


def test_the_problem_schema_describes_the_problems_the_api_answers() -> None:
    plain = problem_body(404, "no user 'x'")
    invalid = problem_body(400, "name: missing", errors=[{"loc": ["body", "name"], "msg": "m"}])
    for body in (plain, invalid):
        assert schemas.Problem.model_validate(body).model_dump(exclude_unset=True) == body


_USER = User("u1", "alice", "h", "Alice", None, False, T, T, disabled_at=T)
_CLIENT = Client(
    "c1", "App", ClientKind.CONFIDENTIAL, ("https://a.test/cb",), ("authorization_code",),
    ("https://r.test/read",), T, secret_hashes=(SecretHash("h", T, T),), access_ttl=60,
)  # fmt: skip
_KEY = SigningKey("k1", "ES256", b"x", {}, KeyState.ACTIVE, T, activated_at=T)
_EVENT = AuditEvent("admin.user_created", T, "admin", "u1", None, "127.0.0.1", {"a": 1}, 7)
_VIEWS: list[tuple[type[BaseModel], dict[str, Any]]] = [
    (schemas.UserOut, views.user_view(_USER)),
    (
        schemas.ResourceOut,
        views.resource_view(Resource("r1", "R", "https://r.test/", ("read",), T)),
    ),
    (schemas.AppOut, views.app_view(_CLIENT)),
    (schemas.AppWithSecretOut, views.app_view(_CLIENT, "s3cret")),
    (schemas.AppWithSecretOut, views.app_view(_CLIENT)),
    (schemas.GrantOut, views.grant_view(Grant("g1", "c1", "u1", ("read",), None, T, T, T))),
    (schemas.ConsentOut, views.consent_view(Consent("u1", "c1", ("read",), T))),
    (schemas.SessionOut, views.session_view(BrowserSession("s", "u1", T, T, "csrf"))),
    (schemas.EventOut, views.event_view(_EVENT)),
    (schemas.KeyOut, views.key_view(_KEY)),
]


@pytest.mark.parametrize(("model", "view"), _VIEWS, ids=lambda v: getattr(v, "__name__", ""))
def test_each_response_model_keeps_every_field_of_its_view(
    model: type[BaseModel], view: dict[str, Any]
) -> None:
    # FastAPI answers `model.model_validate(view)` dumped: nothing may be lost or added.
    dumped = model.model_validate(view).model_dump(mode="json", exclude_unset=True)
    assert dumped == view
