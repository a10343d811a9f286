"""The device authorization grant's endpoint and page (RFC 8628; the rules: `tessera.oauth.device`).

`POST /oauth2/v1/device` (§3.1, Oracle's path): the app authenticates as at the token endpoint
(a public app by its `client_id`), and gets the JSON of §3.2 or the OAuth error. Never on the
event loop: it writes to the database, and client assertions may too.

`/device` (§3.3, the `verification_uri`): the signed-in user (else through the sign-in, and
back, as the account pages do: `tessera.web.account_flow`) enters the code, or finds it filled
in from `verification_uri_complete` (§3.3.1), sees which app asks for which scopes, and allows or
denies. Forms carry the session's CSRF token; wrong codes are throttled (§5.1); the app's and
the domain's second-factor rules apply before a decision. A decision answers 303 to the page,
which then says what happened (fixed words).
"""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tessera.domain.admin import admin_only_scopes
from tessera.oauth import errors
from tessera.oauth.device import (
    DEVICE_KEY_PURPOSE,
    DEVICE_PAGE_PATH,
    DevicePolicy,
    Entry,
    authorize_device,
    count_device_request,
    decide,
    enter_user_code,
    format_user_code,
    may_approve,
    sign_in_outcome,
    user_code_keys,
)
from tessera.oauth.interaction.account import StepUp
from tessera.oauth.interaction.csrf import csrf_token
from tessera.oauth.interaction.login import SignedInUser
from tessera.oauth.interaction.requirements import Enough, Unmet
from tessera.web.account_flow import account_get, account_post, to_sign_in
from tessera.web.browser import describe_scopes
from tessera.web.forms import Params, read_form
from tessera.web.pages import client_address, error_page, page, redirect, url
from tessera.web.proxy import client_ip
from tessera.web.responses import CORS_ANY, NO_STORE, cors_preflight, json_response
from tessera.web.services import Services, services
from tessera.web.token_endpoints import authenticate, refused

__all__ = ["DEVICE_ROUTES", "device_authorization", "device_page", "device_post"]

_MAX_PREFILL = 32
# What the page says after a decision (`?done=`): fixed words, never the query's.
_DONE = {
    "allowed": (True, "Device connected", "The device can now use your account."),
    "denied": (False, "Request denied", "The device was not given access to your account."),
}
_PROBLEMS = {
    "unknown": "That code is not valid. Check the code your device shows and try again.",
    "expired": "That code has expired. Start again on your device to get a new one.",
    "decided": "That code was used already. Start again on your device if you need a new one.",
}


def _key(svc: Services) -> bytes:
    return svc.ctx.subkey(DEVICE_KEY_PURPOSE)


# --- the device authorization endpoint (§3.1, §3.2) --------------------------------------------


def _authorize(request: Request, form: Params) -> dict[str, object]:
    svc = services(request)
    svc.health.check()  # docs/security.md rule 26
    count_device_request(svc.ctx.store.login_throttle, client_address(request), svc.ctx.clock())
    client = authenticate(request, form, allow_public=True)  # refuses repeated parameters
    settings = svc.ctx.settings
    body = authorize_device(
        svc.ctx.store.device_authorizations,
        client,
        form,
        svc.resource_list(),
        svc.ctx.clock(),
        key=_key(svc),
        policy=DevicePolicy(settings.device_code_ttl, settings.device_poll_interval),
        issuer=settings.issuer,
    )
    svc.audit.record("device.requested", client_id=client.client_id, ip=client_ip(request.scope))
    return body


async def device_authorization(request: Request) -> Response:
    try:
        form = await read_form(request)
        body = await run_in_threadpool(_authorize, request, form)
    except errors.OAuthError as exc:
        return refused(request, "device.refused", exc)
    return json_response(body, headers={**NO_STORE, **CORS_ANY})


# --- the verification page (§3.3) --------------------------------------------------------------


def _here(user_code: str | None) -> str:
    """The page to come back to after signing in, with the code the user brought."""
    if not user_code:
        return DEVICE_PAGE_PATH
    return DEVICE_PAGE_PATH + "?" + urlencode({"user_code": user_code[:_MAX_PREFILL]})


def _entry_page(
    svc: Services,
    current: SignedInUser,
    user_code: str = "",
    error: str | None = None,
    status: int = 200,
) -> Response:
    return page(
        svc,
        "device.html",
        status,
        stage="enter",
        user_display_name=current.user.display_name,
        username=current.user.username,
        user_code=user_code[:_MAX_PREFILL],
        error=error,
        locked=status == 429,
        form_action=url(svc, DEVICE_PAGE_PATH),
        csrf_token=csrf_token(svc.csrf_key, "account", current.session.csrf_secret),
    )


def _render(svc: Services, request: Request, current: SignedInUser, query: Params) -> Response:
    done = _DONE.get(query.get("done", ""))
    if done is not None:
        approved, heading, message = done
        return page(
            svc, "device.html", stage="done", approved=approved, heading=heading, message=message
        )
    return _entry_page(svc, current, query.get("user_code", ""))


async def device_page(request: Request) -> Response:
    return await account_get(request, _render, _here(request.query_params.get("user_code")))


def _wait(seconds: int) -> str:
    wait = f"{seconds} seconds" if seconds < 120 else f"{-(-seconds // 60)} minutes"
    return f"Too many wrong codes. Try again in {wait}."


def _confirm_page(svc: Services, current: SignedInUser, entry: Entry, app_name: str) -> Response:
    found = entry.authorization
    assert found is not None and entry.user_code is not None
    return page(
        svc,
        "device.html",
        stage="confirm",
        app_name=app_name,
        user_display_name=current.user.display_name,
        username=current.user.username,
        user_code=format_user_code(entry.user_code),
        scopes=describe_scopes(svc, found.scopes, found.audience),
        form_action=url(svc, DEVICE_PAGE_PATH),
        csrf_token=csrf_token(svc.csrf_key, "account", current.session.csrf_secret),
    )


def _approval_refused(
    svc: Services, request: Request, current: SignedInUser, entry: Entry
) -> Response | None:
    """What stands before this user may allow the request: the sign-in the app and the domain
    ask for (a second factor, or setting one up, then back here), and the admin scopes."""
    found = entry.authorization
    client = svc.client(found.client_id) if found is not None else None
    assert found is not None and client is not None and entry.user_code is not None
    admin_scopes = admin_only_scopes(svc.ctx.settings.issuer, svc.domain.id)
    if not may_approve(current, found, admin_scopes):
        message = "Only administrators may give an app administrator access."
        hint = "The device gets no access. You can close this window."
        return error_page(svc, request, "Not allowed", message, 403, hint)
    outcome = sign_in_outcome(svc.ctx.store.factors, current, client, svc.sign_in_rules())
    if isinstance(outcome, Unmet):
        hint = "Ask your administrator to set up a sign-in method this app needs."
        return error_page(svc, request, "Sign-in not strong enough", outcome.description, 403, hint)
    if not isinstance(outcome, Enough):
        return to_sign_in(svc, _here(entry.user_code), StepUp(fresh=False, second_factor=True))
    return None


def _act(svc: Services, request: Request, current: SignedInUser, form: Params) -> Response:
    store, now = svc.ctx.store, svc.ctx.clock()
    entered = form.get("user_code", "")
    keys = user_code_keys(current.session.id_hash, client_address(request))
    entry = enter_user_code(
        store.device_authorizations, store.login_throttle, _key(svc), entered, keys, now
    )
    if entry.problem == "throttled":
        svc.audit.record("device.throttled", user_id=current.user.id, ip=client_address(request))
        return _entry_page(svc, current, entered, _wait(entry.retry_after), 429)
    if entry.problem is not None or entry.authorization is None or entry.user_code is None:
        message = _PROBLEMS.get(entry.problem or "unknown", _PROBLEMS["unknown"])
        return _entry_page(svc, current, entered, message, 400)
    client = svc.client(entry.authorization.client_id)
    if client is None:  # deleted since the device asked
        return _entry_page(svc, current, entered, _PROBLEMS["expired"], 400)
    decision = form.get("decision")
    if decision != "deny":
        refusal = _approval_refused(svc, request, current, entry)
        if refusal is not None:
            return refusal
    if decision not in ("allow", "deny"):
        return _confirm_page(svc, current, entry, client.name)
    if not decide(
        store.device_authorizations, _key(svc), entry.user_code, current, decision == "allow", now
    ):
        return _entry_page(svc, current, entered, _PROBLEMS["decided"], 400)
    svc.audit.record(
        "device.allowed" if decision == "allow" else "device.denied",
        user_id=current.user.id,
        client_id=client.client_id,
        ip=client_address(request),
    )
    key = "allowed" if decision == "allow" else "denied"
    return redirect(url(svc, DEVICE_PAGE_PATH) + "?" + urlencode({"done": key}), 303)


async def device_post(request: Request) -> Response:
    return await account_post(request, _act, DEVICE_PAGE_PATH)


DEVICE_ROUTES = [
    Route("/oauth2/v1/device", device_authorization, methods=["POST"]),
    Route("/oauth2/v1/device", cors_preflight, methods=["OPTIONS"]),
    Route(DEVICE_PAGE_PATH, device_page, methods=["GET"]),
    Route(DEVICE_PAGE_PATH, device_post, methods=["POST"]),
]
