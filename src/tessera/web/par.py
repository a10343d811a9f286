"""The pushed authorization request endpoint, `POST /oauth2/v1/par` (RFC 9126 §2).

Parse the form, authenticate the app as the token endpoint does (§2: any of its methods, a
public app by its client_id), call `tessera.oauth.par.push`, and answer 201 with the
`request_uri` (§2.2) or the OAuth error as JSON (§2.3). Never on the event loop: the push is a
database write, and client assertions may be too. A DPoP proof sent here binds the code to its
key (RFC 9449 §10.1).
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tessera.oauth import errors
from tessera.oauth.dpop import proof_value
from tessera.oauth.metadata import ENDPOINT_PATHS
from tessera.oauth.par import Pushed, push
from tessera.web.forms import Params, read_form
from tessera.web.proxy import client_ip
from tessera.web.responses import CORS_ANY, NO_STORE, cors_preflight, json_response
from tessera.web.services import services
from tessera.web.token_endpoints import authenticate, refused

__all__ = ["PAR_ROUTES", "pushed_authorization_request"]


def _proof_jkt(request: Request, proof: str | None) -> str | None:
    """RFC 9449 §10.1: a DPoP proof at the PAR endpoint is checked as at the token endpoint
    (§4.3; `htu` the PAR endpoint's URL as discovery names it) and used once (§11.1); its key
    binds the code."""
    if proof is None:
        return None
    svc = services(request)
    now, dpop = svc.ctx.clock(), svc.token_endpoint.dpop
    url = svc.ctx.settings.issuer + ENDPOINT_PATHS["pushed_authorization_request_endpoint"]
    checked = dpop.verify(proof, method="POST", url=url, now=now)
    dpop.use(checked, now)
    return checked.jkt


def _push(request: Request, form: Params) -> Pushed:
    svc = services(request)
    proof = proof_value(request.headers.getlist("dpop"))
    client = authenticate(request, form, allow_public=True)  # refuses repeated parameters
    svc.health.check()  # docs/security.md rule 26
    proof_jkt = _proof_jkt(request, proof)
    credentials = ("client_secret", "client_assertion", "client_assertion_type")
    params = {k: v for k, v in form.items() if k not in credentials}
    pushed = push(
        svc.ctx.store.pushed_requests,
        client,
        params,
        svc.resource_list(),
        svc.ctx.clock(),
        svc.ctx.settings.par_ttl,
        proof_jkt,
    )
    svc.audit.record("par.pushed", client_id=client.client_id, ip=client_ip(request.scope))
    return pushed


async def pushed_authorization_request(request: Request) -> Response:
    try:
        form = await read_form(request)
        pushed = await run_in_threadpool(_push, request, form)
    except errors.OAuthError as exc:
        return refused(request, "par.refused", exc)
    headers = {**NO_STORE, **CORS_ANY}
    if "dpop" in request.headers:
        svc = services(request)
        nonce = svc.token_endpoint.dpop.fresh_nonce(svc.ctx.clock())
        if nonce is not None:
            headers["DPoP-Nonce"] = nonce  # RFC 9449 §8.2
    return json_response(pushed.body(), 201, headers=headers)


PAR_ROUTES = [
    Route("/oauth2/v1/par", pushed_authorization_request, methods=["POST"]),
    Route("/oauth2/v1/par", cors_preflight, methods=["OPTIONS"]),
]
