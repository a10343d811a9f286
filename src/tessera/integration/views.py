"""What the management API answers: response models (they also describe the OpenAPI)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from tessera.integration.store import RunRecord, StoredIntegration

__all__ = [
    "API_PREFIX",
    "CallerView",
    "IntegrationPage",
    "IntegrationView",
    "ProblemView",
    "RunPage",
    "RunView",
    "TokenErrorView",
    "error_responses",
    "integration_view",
    "run_view",
]

API_PREFIX = "/ic/api/integration/v1"


class IntegrationView(BaseModel):
    id: str = Field(description="`CODE|VERSION`, as in the integration's URLs")
    code: str
    version: str
    name: str
    description: str
    state: str = Field(description="configured, activated or deactivated")
    endpoint: str = Field(description="Where the trigger listens, path template included")
    method: str
    required_scope: str = Field(description="The trigger's scope (see the scopes table)")
    created_at: datetime
    updated_at: datetime
    document: dict[str, Any] = Field(description="The document, connection secrets redacted")


class IntegrationPage(BaseModel):
    items: list[IntegrationView]
    limit: int
    offset: int
    total: int
    has_more: bool


class CallerView(BaseModel):
    sub: str
    sub_type: str = Field(description="user or client")
    client_id: str
    user_displayname: str | None


class RunView(BaseModel):
    id: int
    code: str
    version: str
    integration: str = Field(description="`CODE|VERSION`")
    started_at: datetime
    duration_ms: float
    status: str = Field(description="succeeded or failed")
    http_status: int
    caller: CallerView
    acting_clients: list[str] = Field(
        description="The apps that called connections on the caller's behalf (token exchange, "
        "RFC 8693): the `act` of the tokens those connections saw, with the caller as `sub`"
    )
    error: str | None


class RunPage(BaseModel):
    items: list[RunView]
    limit: int
    offset: int
    total: int
    has_more: bool


class TokenErrorView(BaseModel):
    """RFC 6750 §3: the body of a 400/401/403 token error (with `WWW-Authenticate`)."""

    error: str = Field(description="invalid_request, invalid_token or insufficient_scope")
    error_description: str | None = None


class ProblemView(BaseModel):
    """RFC 9457 problem details (`application/problem+json`)."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[dict[str, str]] | None = None
    error: str | None = Field(
        None, description="With a missing role: `insufficient_scope`, as in the challenge"
    )
    required_roles: list[str] | None = Field(
        None, description="With a missing role: the roles any one of which would do"
    )


_PROBLEM_REF = "#/components/schemas/ProblemView"
_TOKEN_ERROR_REF = "#/components/schemas/TokenErrorView"


def error_responses(meanings: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses`: 401/403 token errors (RFC 6750) and problem details for the rest."""
    out: dict[int | str, dict[str, Any]] = {
        401: {"model": TokenErrorView, "description": "No valid access token (RFC 6750 §3)"},
        403: {
            "description": "The token lacks the scope (RFC 6750 §3.1 body, `insufficient_scope` "
            "with `scope=`) or the caller lacks a role of the request (a problem document "
            "naming the roles in `detail` and `required_roles`, with the same challenge)",
            "content": {
                "application/json": {"schema": {"$ref": _TOKEN_ERROR_REF}},
                "application/problem+json": {"schema": {"$ref": _PROBLEM_REF}},
            },
        },
    }
    for status, meaning in meanings.items():
        out[status] = {
            "description": meaning,
            "content": {"application/problem+json": {"schema": {"$ref": _PROBLEM_REF}}},
        }
    return out


def integration_view(item: StoredIntegration) -> IntegrationView:
    doc = item.document
    return IntegrationView(
        id=doc.ident,
        code=doc.code,
        version=doc.version,
        name=doc.name,
        description=doc.description,
        state=item.state.value,
        endpoint=f"{API_PREFIX}/flows/rest/{doc.code}/{doc.version}{doc.trigger.path}",
        method=doc.trigger.method,
        required_scope=doc.trigger.scope,
        created_at=item.created_at,
        updated_at=item.updated_at,
        document=doc.public(),
    )


def run_view(run: RunRecord) -> RunView:
    assert run.id is not None
    return RunView(
        id=run.id,
        code=run.code,
        version=run.version,
        integration=f"{run.code}|{run.version}",
        started_at=run.started_at,
        duration_ms=run.duration_ms,
        status=run.status,
        http_status=run.http_status,
        caller=CallerView(
            sub=run.caller.sub,
            sub_type=run.caller.sub_type,
            client_id=run.caller.client_id,
            user_displayname=run.caller.user_displayname,
        ),
        acting_clients=list(run.acting_clients),
        error=run.error,
    )
