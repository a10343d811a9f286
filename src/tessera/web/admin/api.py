"""The admin API's application: the token check, the routers, the problems, the OpenAPI
description."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.security import SecurityScopes
from joserfc.jwk import ECKey, RSAKey

from tessera.domain.admin import ADMIN_SCOPE, admin_audience
from tessera.resource.fastapi import TokenDependency
from tessera.resource.validator import TokenValidator
from tessera.web.admin import apps, audit, keys, resources, tokens, users
from tessera.web.problems import install_problem_handlers, problem_from_http
from tessera.web.services import Services

__all__ = ["AuthenticateFirst", "admin_app", "build_admin_api"]

_PROBLEM_JSON = "application/problem+json"


class _LocalJwks:
    """The validator's key source, read from our own key ring instead of over HTTP."""

    def __init__(self, svc: Services) -> None:
        self._svc = svc

    def get(self, kid: str) -> ECKey | RSAKey | None:
        for key in self._svc.ctx.keys.public_keys():
            if key.get("kid") == kid:
                return ECKey.import_key(key) if key["kty"] == "EC" else RSAKey.import_key(key)
        return None


class _LocalRevocation:
    def __init__(self, svc: Services) -> None:
        self._svc = svc

    def is_revoked(self, token: str, claims: Mapping[str, Any]) -> bool:
        self._svc.revocations.sync()
        return self._svc.revocations.revoked(claims)


class AuthenticateFirst:
    """Check the administrator's token before the body is read (FastAPI reads and parses a
    request's body before it resolves the route's dependencies): an unauthenticated request is
    answered 401 without its body ever being read (RFC 6750 §3.1)."""

    _BODYLESS = frozenset({"GET", "HEAD", "OPTIONS"})

    def __init__(self, api: FastAPI) -> None:
        self.api = api

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] not in self._BODYLESS:
            request = Request(scope)
            require: TokenDependency = self.api.state.require_token
            try:
                await require(request, SecurityScopes([ADMIN_SCOPE]))
            except HTTPException as exc:
                await problem_from_http(exc)(scope, receive, send)
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


def _description(issuer: str) -> str:
    return (
        "Administer a Tessera identity domain: users, resources, trusted applications, "
        "consents, sessions, tokens, signing keys and the audit log. Every route needs a "
        f"bearer token for the audience `{admin_audience(issuer)}` with the scope "
        f"`{ADMIN_SCOPE}`, which only administrators can obtain. Every error is an RFC 9457 "
        "problem (`application/problem+json`): `type`, `title`, `status`, `detail`, an "
        "`error` code, and for invalid input an `errors` list."
    )


def admin_app(issuer: str) -> FastAPI:
    """The admin API's routes and description, without the per-domain objects."""
    api = _AdminAPI(
        title="Tessera admin API",
        version="1",
        description=_description(issuer),
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    for module in (users, tokens, resources, apps, keys, audit):
        api.include_router(module.router)
    return api


def build_admin_api(svc: Services) -> FastAPI:
    """The admin API of one identity domain; its handlers find `svc` on `app.state`."""
    issuer = svc.ctx.settings.issuer
    validator = TokenValidator(
        issuer,
        admin_audience(issuer),
        jwks=_LocalJwks(svc),  # type: ignore[arg-type]
        revocation=_LocalRevocation(svc),
    )
    api = admin_app(issuer)
    api.state.services = svc
    api.state.require_token = TokenDependency(validator)
    install_problem_handlers(api, on_store_down=svc.health.mark_down)
    return api
