"""`/oauth2/v1/userinfo` over HTTP: read the bearer token, call `tessera.oauth.userinfo`,
render the claims or the RFC 6750 §3 error."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tessera.oauth import errors
from tessera.oauth.userinfo import userinfo as userinfo_claims
from tessera.web.bearer import bearer_token
from tessera.web.errors import oauth_error_response
from tessera.web.forms import read_form
from tessera.web.responses import CORS_ANY, NO_STORE, cors_preflight, json_response
from tessera.web.services import services

__all__ = ["USERINFO_ROUTES", "userinfo"]


async def userinfo(request: Request) -> Response:
    """OIDC Core §5.3: GET or POST, the token in the header or a POST's form (RFC 6750 §2)."""
    svc = services(request)
    try:
        form = await read_form(request) if _is_form(request) else None
        if form is not None:
            errors.refuse_repeated(form.duplicated)
        token = bearer_token(request, form)
        body = await run_in_threadpool(
            userinfo_claims,
            token,
            issuer=svc.issuer,
            revocations=svc.revocations,
            lookup_user=svc.ctx.store.users.get,
            now=svc.ctx.clock(),
        )
    except errors.OAuthError as exc:
        return oauth_error_response(exc, bearer=True)
    return json_response(body, headers={**NO_STORE, **CORS_ANY})


def _is_form(request: Request) -> bool:
    """A POST with a form body, which may carry the token (RFC 6750 §2.2)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return request.method == "POST" and content_type == "application/x-www-form-urlencoded"


USERINFO_ROUTES = [
    Route("/oauth2/v1/userinfo", userinfo, methods=["GET", "POST"]),
    Route("/oauth2/v1/userinfo", cors_preflight, methods=["OPTIONS"]),
]
