"""`/oauth2/v1/userinfo` over HTTP: read the bearer or DPoP-bound token (and its DPoP proof),
call `tessera.oauth.userinfo`, render the claims or the RFC 6750 §3 error with the challenges
of both schemes (RFC 9449 §7.1, §7.2)."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tessera.oauth import errors
from tessera.oauth.dpop import proof_value
from tessera.oauth.metadata import ENDPOINT_PATHS
from tessera.oauth.userinfo import Presented
from tessera.oauth.userinfo import userinfo as userinfo_claims
from tessera.shared.authorization import AccessCredentials
from tessera.web.bearer import access_credentials
from tessera.web.errors import oauth_error_response
from tessera.web.forms import read_form
from tessera.web.responses import CORS_ANY, NO_STORE, cors_preflight, json_response
from tessera.web.services import services

__all__ = ["USERINFO_ROUTES", "userinfo"]


async def userinfo(request: Request) -> Response:
    """OIDC Core §5.3: GET or POST, the token in the header or a POST's form (RFC 6750 §2)."""
    svc = services(request)
    dpop = svc.token_endpoint.dpop
    credentials: AccessCredentials | None = None
    try:
        form = await read_form(request) if _is_form(request) else None
        if form is not None:
            errors.refuse_repeated(form.duplicated)
        credentials = access_credentials(request, form)
        presented = Presented(
            credentials.scheme,
            proof_value(request.headers.getlist("dpop"), status=401),
            request.method,
            # RFC 9449 §4.3 check 9: the URL as discovery names it, not the Host header.
            svc.ctx.settings.issuer + ENDPOINT_PATHS["userinfo_endpoint"],
        )
        body = await run_in_threadpool(
            userinfo_claims,
            credentials.token,
            issuer=svc.issuer,
            revocations=svc.revocations,
            lookup_user=svc.ctx.store.users.get,
            now=svc.ctx.clock(),
            presented=presented,
            dpop=dpop,
            group_names=svc.token_endpoint.memberships.group_names,
        )
    except errors.OAuthError as exc:
        if credentials is not None and credentials.is_dpop:
            exc.dpop_only = True  # RFC 9449 §7.2: the scheme used carries the error
        return oauth_error_response(exc, bearer=True, dpop_algs=dpop.algorithms)
    headers = {**NO_STORE, **CORS_ANY}
    nonce = dpop.fresh_nonce(svc.ctx.clock()) if credentials.is_dpop else None
    if nonce is not None:
        headers["DPoP-Nonce"] = nonce  # RFC 9449 §8.2, §9
    return json_response(body, headers=headers)


def _is_form(request: Request) -> bool:
    """A POST with a form body, which may carry the token (RFC 6750 §2.2)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return request.method == "POST" and content_type == "application/x-www-form-urlencoded"


USERINFO_ROUTES = [
    Route("/oauth2/v1/userinfo", userinfo, methods=["GET", "POST"]),
    Route("/oauth2/v1/userinfo", cors_preflight, methods=["OPTIONS"]),
]
