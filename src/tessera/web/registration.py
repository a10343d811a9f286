"""Dynamic client registration over HTTP: `POST /oauth2/v1/register` (RFC 7591 §3) with an
initial access token, and the client configuration endpoint
`GET/PUT/DELETE /oauth2/v1/register/{client_id}` (RFC 7592 §2) with the registration access
token, both as `Authorization: Bearer` (RFC 6750 §2.1).

Parse the request, call `tessera.manage.registration` in a worker thread (database writes), and
answer: 201 / 200 with the client information (RFC 7591 §3.2.1, RFC 7592 §3), 204 after a
delete; a bad token is 401 `invalid_token` with its `WWW-Authenticate` challenge (RFC 6750
§3.1), bad metadata 400 `invalid_client_metadata` or `invalid_redirect_uri` (RFC 7591 §3.2.2).
Every path is the request's identity domain's.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from tessera.manage import registration as rules
from tessera.manage.audit import Actor
from tessera.oauth.errors import InvalidToken, OAuthError
from tessera.oauth.registration import (
    MAX_METADATA_BYTES,
    InvalidClientMetadata,
    InvalidRedirectUri,
)
from tessera.web.bearer import bearer_token
from tessera.web.errors import oauth_error_response
from tessera.web.proxy import client_ip
from tessera.web.responses import NO_STORE, json_response
from tessera.web.services import Services, services

__all__ = ["REGISTRATION_ROUTES", "client_configuration", "register_client"]


def _registry(svc: Services) -> rules.Registry:
    ctx = svc.ctx
    return rules.Registry(ctx.store, ctx.secret_pepper, ctx.settings.issuer, svc.domain.id)


def _actor(svc: Services, request: Request) -> Actor:
    ip = client_ip(request.scope)
    return Actor("registration", svc.audit.record, ip if isinstance(ip, str) else None)


async def _json_body(request: Request) -> bytes | None:
    """The body of a JSON request (RFC 7591 §3.1), at most `MAX_METADATA_BYTES`; None when it
    is not `application/json` (refused after the token is checked)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        return None
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_METADATA_BYTES:
                raise InvalidClientMetadata(
                    f"the client metadata are larger than {MAX_METADATA_BYTES} bytes"
                )
    except ClientDisconnect:
        raise InvalidClientMetadata("the request body was not received in full") from None
    return bytes(body)


def _refused(svc: Services, request: Request, exc: OAuthError) -> Response:
    """The error answer; a refused token challenges (RFC 6750 §3.1) and is audited."""
    metadata = isinstance(exc, InvalidClientMetadata | InvalidRedirectUri)
    if isinstance(exc, InvalidToken) and exc.description:
        svc.audit.record(
            "registration.refused",
            ip=client_ip(request.scope),
            error=exc.error,
            path=request.url.path,
        )
    return oauth_error_response(exc, bearer=not metadata)


def _register(svc: Services, request: Request, token: str, body: bytes | None) -> dict[str, Any]:
    svc.health.check()  # docs/security.md rule 26
    answer = rules.register(_registry(svc), token, body, svc.ctx.clock(), _actor(svc, request))
    svc.clients.clear()
    return answer


async def register_client(request: Request) -> Response:
    """RFC 7591 §3.1: register an app with an initial access token."""
    svc = services(request)
    try:
        token = bearer_token(request)
        body = await _json_body(request)
        answer = await run_in_threadpool(_register, svc, request, token, body)
    except OAuthError as exc:
        return _refused(svc, request, exc)
    return json_response(answer, 201, headers=NO_STORE)


def _configure(
    svc: Services, request: Request, client_id: str, token: str, body: bytes | None
) -> dict[str, Any] | None:
    svc.health.check()
    registry, actor = _registry(svc), _actor(svc, request)
    if "\x00" in client_id:  # no client id has one; no database text can hold one
        raise InvalidToken("the token is unknown, expired, revoked or used up")
    if request.method == "GET":
        return rules.read_registration(registry, client_id, token, actor)
    if request.method == "PUT":
        now = svc.ctx.clock()
        answer = rules.replace_registration(registry, client_id, token, body, now, actor)
    else:
        rules.delete_registration(registry, client_id, token, svc.ctx.clock(), actor)
        answer = None
    svc.clients.clear()
    return answer


async def client_configuration(request: Request) -> Response:
    """RFC 7592 §2.1-§2.3: read, replace or delete a registration."""
    svc = services(request)
    client_id = request.path_params["client_id"]
    try:
        token = bearer_token(request)
        body = await _json_body(request) if request.method == "PUT" else None
        answer = await run_in_threadpool(_configure, svc, request, client_id, token, body)
    except OAuthError as exc:
        return _refused(svc, request, exc)
    if answer is None:
        return Response(status_code=204, headers=NO_STORE)
    return json_response(answer, headers=NO_STORE)


REGISTRATION_ROUTES = [
    Route("/oauth2/v1/register", register_client, methods=["POST"]),
    Route(
        "/oauth2/v1/register/{client_id}",
        client_configuration,
        methods=["GET", "PUT", "DELETE"],
    ),
]
