"""The admin API's application: the token check, the routers, the problems, the OpenAPI
description."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from tessera.domain.admin import ADMIN_SCOPE, OPERATOR_SCOPE, admin_audience
from tessera.resource.errors import TokenError
from tessera.resource.fastapi import http_error
from tessera.web.admin import (
    apps,
    audit,
    domains,
    groups,
    keys,
    providers,
    registration_tokens,
    resources,
    roles,
    tokens,
    trusted_issuers,
    users,
)
from tessera.web.admin.guard import authenticate, domain_services
from tessera.web.problems import install_problem_handlers, problem, problem_from_http
from tessera.web.services import Services

__all__ = ["AuthenticateFirst", "admin_app", "build_admin_api"]

_PROBLEM_JSON = "application/problem+json"
# Routes of the default domain's admin API only.
_DOMAINS_TAG = "domains"


class AuthenticateFirst:
    """Check the caller's token before the body is read (FastAPI reads and parses a request's
    body before it resolves the route's dependencies): an unauthenticated request is answered
    401 without its body ever being read (RFC 6750 §3.1). The check is the route's own, for the
    request's domain (`tessera.web.admin.guard`).

    A NUL in the path or the query (a user, app or domain reference, an audit filter) is
    refused first: no database text parameter can hold one (PostgreSQL refuses it), and no
    name or id has one."""

    _BODYLESS = frozenset({"GET", "HEAD", "OPTIONS"})

    def __init__(self, api: FastAPI) -> None:
        self.api = api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (
            "\x00" in scope["path"] or b"%00" in scope.get("query_string", b"")
        ):
            detail = "the path or query contains a NUL character"
            await problem(400, detail)(scope, receive, send)
            return
        if scope["type"] == "http" and scope["method"] not in self._BODYLESS:
            try:
                await authenticate(Request(scope), self.api.state.services)
            except TokenError as exc:
                await problem_from_http(http_error(exc))(scope, receive, send)
                return
        await self.api(scope, receive, send)


class _AdminAPI(FastAPI):
    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            self.openapi_schema = _as_problems(super().openapi())
        return self.openapi_schema


def _as_problems(spec: dict[str, Any]) -> dict[str, Any]:
    """Error responses as what they are: RFC 9457 problems (`application/problem+json`), and
    invalid input as 400, not FastAPI's 422 (`tessera.web.problems`)."""
    for item in spec.get("paths", {}).values():
        for operation in item.values():
            responses = operation.get("responses", {})
            responses.pop("422", None)
            for status, response in responses.items():
                content = response.get("content", {})
                if int(status) >= 400 and "application/json" in content:
                    content[_PROBLEM_JSON] = content.pop("application/json")
    schemas = spec.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return spec


def _description(issuer: str, base_issuer: str) -> str:
    """What the API is and who may call it, for the domain of `issuer` (docs/domains.md)."""
    default = issuer == base_issuer
    where = (
        "This is the default domain's admin API: it also manages the identity domains "
        "(`/domains`, operators only). "
        if default
        else ""
    )
    return (
        f"Administer the Tessera identity domain `{issuer}`: users, groups, resources and "
        "their roles, trusted applications, upstream sign-in providers, consents, sessions, "
        "tokens, signing keys and the audit log. Every "
        f"identity domain has its own admin API at `<issuer>/admin/v1` (`{base_issuer}"
        "/domains/<name>/admin/v1`, or `https://<host>/admin/v1` for a domain with a host name "
        f"of its own). {where}Every route needs a bearer token, either of the domain's "
        f"administrators (issuer `{issuer}`, audience `{admin_audience(issuer)}`, scope "
        f"`{ADMIN_SCOPE}`, which only administrators can obtain) or of an operator: an "
        f"administrator of the default domain whose token (issuer `{base_issuer}`, audience "
        f"`{admin_audience(base_issuer)}`) carries the scope `{OPERATOR_SCOPE}`. Operators may "
        "act in every domain; their changes are audited in that domain with the actor "
        "`operator:<sub>`. A token of another domain is refused (401 `invalid_token`). Every "
        "error is an RFC 9457 problem (`application/problem+json`): `type`, `title`, "
        "`status`, `detail`, an `error` code, and for invalid input an `errors` list."
    )


def admin_app(issuer: str) -> FastAPI:
    """The admin API's routes and description, without the per-domain objects; `issuer` is
    the default domain's (the base issuer)."""
    api = _AdminAPI(
        title="Tessera admin API",
        version="1",
        description=_description(issuer, issuer),
        openapi_url=None,  # `_openapi`: per domain
        docs_url=None,
        redoc_url=None,
    )
    for module in (
        users,
        groups,
        tokens,
        resources,
        roles,
        apps,
        registration_tokens,
        trusted_issuers,
        providers,
        keys,
        audit,
        domains,
    ):
        api.include_router(module.router)
    api.add_route("/openapi.json", _openapi, include_in_schema=False)
    return api


async def _openapi(request: Request) -> JSONResponse:
    """The OpenAPI description as the request's domain sees it: its issuer, its URL (`servers`,
    as FastAPI gives it), and `/domains` only at the default domain."""
    api: _AdminAPI = request.app
    default: Services = api.state.services
    svc = domain_services(request, default)
    spec = api.openapi()  # built once; the copies below share its parts
    info = {
        **spec["info"],
        "description": _description(svc.ctx.settings.issuer, default.ctx.settings.issuer),
    }
    paths = spec["paths"]
    if not svc.domain.is_default:
        paths = {
            path: item
            for path, item in paths.items()
            if not any(_DOMAINS_TAG in op.get("tags", ()) for op in item.values())
        }
    found = {**spec, "info": info, "paths": paths}
    root_path = request.scope.get("root_path", "").rstrip("/")
    if root_path:
        found["servers"] = [{"url": root_path}]
    return JSONResponse(found)


def build_admin_api(
    svc: Services, on_domain_changed: Callable[[str], None] | None = None
) -> FastAPI:
    """The admin API of every identity domain on this node, over the default domain's `svc`
    (each request's own domain comes from the domain router). `on_domain_changed(domain_id)` is
    called after a domain was created, changed or deleted here, so the node's caches forget it
    at once (other nodes see the change within the router's cache time)."""
    api = admin_app(svc.ctx.settings.issuer)
    api.state.services = svc
    api.state.on_domain_changed = on_domain_changed or (lambda _: None)
    install_problem_handlers(api, on_store_down=svc.health.mark_down)
    return api
