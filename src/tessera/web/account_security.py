"""The account pages' sign-in methods (docs/mfa.md): passkeys (add with the WebAuthn ceremony,
rename, remove), the authenticator app (set up from its QR code, remove) and recovery codes
(how many are left, new ones shown once).

Adding or removing a factor and new recovery codes need a fresh sign-in with the user's factor
(`account_flow.step_up_of`); the core is `tessera.oauth.interaction.enrollment`, which refuses
to remove the last factor where one is required. Every change is audited and mailed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tessera.oauth.factors.passkeys import methods_for
from tessera.oauth.interaction.enrollment import (
    confirm_totp,
    factor_required,
    new_recovery_codes,
    registration_options,
    remove_passkey,
    remove_totp,
    rename_passkey,
)
from tessera.oauth.interaction.login import SignedInUser, authenticated_further
from tessera.oauth.interaction.requirements import user_factors
from tessera.oauth.interaction.second_factor import FactorRefused, passkey_challenge
from tessera.web.account import SECURITY_PAGE, notify_change, security_changed, when
from tessera.web.account_flow import (
    AccountPost,
    account_actor,
    account_get,
    account_page,
    account_post,
    step_up_of,
)
from tessera.web.account_providers import link_provider, linked_values, unlink_provider
from tessera.web.factor_pages import (
    first_recovery_codes,
    recovery_codes_page,
    register_from_form,
    script_json,
    totp_enrollment,
)
from tessera.web.forms import Params
from tessera.web.pages import url
from tessera.web.services import Services

__all__ = ["ACCOUNT_SECURITY_ROUTES"]

_HERE = SECURITY_PAGE


@dataclass(frozen=True, slots=True)
class _PasskeyView:
    credential_id: str
    name: str
    added: str
    last_used: str
    kind: str


def _passkey_values(svc: Services, current: SignedInUser) -> dict[str, Any]:
    """The WebAuthn registration options for the "Add a passkey" button."""
    challenge, state = passkey_challenge(
        svc.factor_keys, "register", current.user.id, svc.ctx.clock()
    )
    try:
        options = script_json(
            registration_options(svc.ctx.store, svc.relying_party, current.user, challenge)
        )
    except FactorRefused as exc:
        return {"passkey_options": Markup(""), "passkey_limit": exc.message}
    return {"passkey_options": options, "passkey_state": state, "passkey_limit": None}


def _security(
    svc: Services,
    request: Request,
    current: SignedInUser,
    query: Params,
    error: str | None = None,
    status: int = 200,
) -> Response:
    store = svc.ctx.store
    factors = user_factors(store.factors, current.user.id)
    passkeys = [
        _PasskeyView(
            credential_id=p.credential_id,
            name=p.name,
            added=when(p.created_at),
            last_used=when(p.last_used_at),
            kind="Synced between your devices" if p.backed_up else "Kept on one device or key",
        )
        for p in factors.passkeys
    ]
    fresh = step_up_of(svc, current) is None
    values = _passkey_values(svc, current) if fresh else {"passkey_options": Markup("")}
    return account_page(
        svc,
        "account_security.html",
        current,
        "security",
        query,
        status,
        scripts=fresh,
        fresh=fresh,
        reauth_url=url(svc, "/account/reauth?to=security"),
        passkeys=passkeys,
        totp=factors.totp,
        totp_added=when(factors.totp.confirmed_at) if factors.totp else None,
        codes_left=len(factors.recovery_codes),
        has_factor=factors.any,
        required=factor_required(current.user, svc.sign_in_rules()),
        action=url(svc, _HERE),
        error=error,
        **values,
        **linked_values(svc, current),
    )


def _refused(
    svc: Services, request: Request, current: SignedInUser, exc: FactorRefused, what: str
) -> Response:
    account_actor(svc, request, current).audit(
        "account.factor_refused", user_id=current.user.id, action=what, reason=exc.audit
    )
    return _security(svc, request, current, Params([]), exc.message, 400)


def _add_passkey(svc: Services, request: Request, current: SignedInUser, form: Params) -> Response:
    store, now = svc.ctx.store, svc.ctx.clock()
    try:
        passkey = register_from_form(svc, current.user, form, now)
    except FactorRefused as exc:
        return _refused(svc, request, current, exc, "passkey_add")
    authenticated_further(store, current, methods_for(passkey.backed_up, False), now)
    response = security_changed(
        svc,
        request,
        current,
        "account.passkey_added",
        f"a passkey named {passkey.name} was added",
        "passkey-added",
        name=passkey.name,
        synced=passkey.backed_up,
    )
    return first_recovery_codes(svc, current.user, url(svc, _HERE + "?done=passkey-added"), []) or (
        response
    )


def _rename_passkey(
    svc: Services, request: Request, current: SignedInUser, form: Params
) -> Response:
    try:
        rename_passkey(
            svc.ctx.store, current.user, form.get("credential_id", ""), form.get("name", "")
        )
    except FactorRefused as exc:
        return _refused(svc, request, current, exc, "passkey_rename")
    return security_changed(
        svc,
        request,
        current,
        "account.passkey_renamed",
        "a passkey was renamed",
        "passkey-renamed",
    )


def _remove_passkey(
    svc: Services, request: Request, current: SignedInUser, form: Params
) -> Response:
    store = svc.ctx.store
    credential_id = form.get("credential_id", "")
    found = store.factors.passkey(credential_id) if credential_id else None
    try:
        remove_passkey(store, current.user, svc.sign_in_rules(), credential_id, svc.ctx.clock())
    except FactorRefused as exc:
        return _refused(svc, request, current, exc, "passkey_remove")
    name = found.name if found is not None else "passkey"
    return security_changed(
        svc,
        request,
        current,
        "account.passkey_removed",
        f"the passkey named {name} was removed",
        "passkey-removed",
        name=name,
    )


def _totp_page(
    svc: Services,
    request: Request,
    current: SignedInUser,
    query: Params,
    error: str | None = None,
    status: int = 200,
) -> Response:
    try:
        enrollment = totp_enrollment(svc, current, svc.ctx.clock())
    except FactorRefused as exc:
        return _refused(svc, request, current, exc, "totp_start")
    return account_page(
        svc,
        "account_totp.html",
        current,
        "security",
        query,
        status,
        totp=enrollment,
        action=url(svc, _HERE + "/totp"),
        back=url(svc, _HERE),
        error=error,
    )


def _confirm_totp(svc: Services, request: Request, current: SignedInUser, form: Params) -> Response:
    store, now = svc.ctx.store, svc.ctx.clock()
    try:
        confirm_totp(
            store,
            svc.factor_keys,
            current.user,
            form.get("totp_state", ""),
            current.session.id_hash,
            form.get("code", ""),
            now,
        )
    except FactorRefused as exc:
        account_actor(svc, request, current).audit(
            "account.factor_refused",
            user_id=current.user.id,
            action="totp_confirm",
            reason=exc.audit,
        )
        return _totp_page(svc, request, current, Params([]), exc.message, 400)
    # The code proved the app is at hand: the session counts it (as at the sign-in's enrollment).
    authenticated_further(store, current, ("otp",), now)
    response = security_changed(
        svc, request, current, "account.totp_added", "an authenticator app was set up", "totp-added"
    )
    return first_recovery_codes(svc, current.user, url(svc, _HERE + "?done=totp-added"), []) or (
        response
    )


def _remove_totp(svc: Services, request: Request, current: SignedInUser, form: Params) -> Response:
    try:
        remove_totp(svc.ctx.store, current.user, svc.sign_in_rules(), svc.ctx.clock())
    except FactorRefused as exc:
        return _refused(svc, request, current, exc, "totp_remove")
    return security_changed(
        svc,
        request,
        current,
        "account.totp_removed",
        "your authenticator app was removed",
        "totp-removed",
    )


def _new_codes(svc: Services, request: Request, current: SignedInUser, form: Params) -> Response:
    if not user_factors(svc.ctx.store.factors, current.user.id).any:
        exc = FactorRefused(
            "Recovery codes back up a passkey or an authenticator app: add one first."
        )
        return _refused(svc, request, current, exc, "recovery_codes")
    codes = new_recovery_codes(svc.ctx.store, svc.factor_keys, current.user, svc.ctx.clock())
    account_actor(svc, request, current).audit(
        "account.recovery_codes_issued", user_id=current.user.id
    )
    notify_change(svc, current, "new recovery codes were made (the old ones no longer work)")
    return recovery_codes_page(svc, codes, url(svc, _HERE), [])


async def security_page(request: Request) -> Response:
    return await account_get(request, _security, _HERE)


async def totp_page(request: Request) -> Response:
    return await account_get(request, _totp_page, _HERE + "/totp", sensitive=True)


def _post(act: AccountPost, sensitive: bool = True) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        return await account_post(request, act, _HERE, sensitive=sensitive)

    return endpoint


ACCOUNT_SECURITY_ROUTES = [
    Route(_HERE, security_page, methods=["GET"]),
    Route(_HERE + "/passkeys", _post(_add_passkey), methods=["POST"]),
    Route(_HERE + "/passkeys/rename", _post(_rename_passkey, sensitive=False), methods=["POST"]),
    Route(_HERE + "/passkeys/remove", _post(_remove_passkey), methods=["POST"]),
    Route(_HERE + "/totp", totp_page, methods=["GET"]),
    Route(_HERE + "/totp", _post(_confirm_totp), methods=["POST"]),
    Route(_HERE + "/totp/remove", _post(_remove_totp), methods=["POST"]),
    Route(_HERE + "/recovery-codes", _post(_new_codes), methods=["POST"]),
    Route(
        _HERE + "/providers/link", _post(partial(link_provider, render=_security)), methods=["POST"]
    ),
    Route(
        _HERE + "/providers/unlink",
        _post(partial(unlink_provider, render=_security)),
        methods=["POST"],
    ),
]
