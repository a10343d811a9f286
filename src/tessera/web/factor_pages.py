"""The sign-in pages of second factors: the second-factor page, enrolling a factor during the
sign-in, the recovery codes, and the passkey button of the sign-in page (docs/mfa.md).

These pages run our one script (`/static/webauthn.js`, no inline script: the CSP allows
`script-src 'self'` on them only), which calls `navigator.credentials` with the options the
page carries as JSON and posts the result in the form.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from markupsafe import Markup
from starlette.responses import Response

from tessera.domain.model import Passkey, User
from tessera.oauth.authorize import AuthorizationRequest
from tessera.oauth.factors import passkeys
from tessera.oauth.interaction.csrf import csrf_token
from tessera.oauth.interaction.enrollment import (
    TotpEnrollment,
    new_recovery_codes,
    register_passkey,
    registration_options,
    start_totp,
)
from tessera.oauth.interaction.login import SignedInUser
from tessera.oauth.interaction.second_factor import FactorRefused, passkey_challenge
from tessera.web.pages import origin, page, url
from tessera.web.services import Services

__all__ = [
    "BROWSER_COOKIE",
    "enroll_page",
    "factor_page",
    "first_recovery_codes",
    "passkey_sign_in_values",
    "recovery_codes_page",
    "register_from_form",
    "script_json",
    "totp_enrollment",
]

BROWSER_COOKIE = "tessera_bid"


def script_json(text: str) -> Markup:
    """JSON to put inside a `<script type="application/json">` element: `<`, `>` and `&`
    escaped, so a user's display name in it cannot close the element."""
    escaped = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(escaped)  # noqa: S704 - escaped above for this context


def passkey_sign_in_values(svc: Services, bid: str, now: datetime) -> dict[str, Any]:
    """The sign-in page's "Sign in with a passkey": options for a username-less assertion
    (no allow list, user verification required), bound to this browser's id `bid`."""
    challenge, state = passkey_challenge(svc.factor_keys, "signin", bid, now)
    rp = svc.relying_party
    return {
        "passkey_options": script_json(
            passkeys.authentication_options(
                rp_id=rp.id, challenge=challenge, user_verification="required"
            )
        ),
        "passkey_state": state,
        "passkey_action": url(svc, "/oauth2/v1/login/passkey"),
    }


def factor_page(
    svc: Services,
    req: AuthorizationRequest,
    authz: str,
    current: SignedInUser,
    methods: tuple[str, ...],
    now: datetime,
    error: str | None = None,
    status: int = 200,
) -> Response:
    """Confirm it is you: a passkey, a code of the authenticator app, or a recovery code."""
    values: dict[str, Any] = {}
    if "passkey" in methods:
        challenge, state = passkey_challenge(
            svc.factor_keys, "factor", current.session.id_hash, now
        )
        allow = [p.credential_id for p in svc.ctx.store.factors.passkeys_for(current.user.id)]
        values = {
            "passkey_options": script_json(
                passkeys.authentication_options(
                    rp_id=svc.relying_party.id, challenge=challenge, allow=allow
                )
            ),
            "passkey_state": state,
        }
    return page(
        svc,
        "factor.html",
        status,
        form_targets=[origin(req.redirect_uri)],
        scripts="passkey" in methods,
        app_name=req.client.name,
        user_display_name=current.user.display_name,
        username=current.user.username,
        methods=methods,
        form_action=url(svc, "/oauth2/v1/login/factor"),
        authz=authz,
        csrf_token=csrf_token(svc.csrf_key, "factor", current.session.csrf_secret),
        error=error,
        **values,
    )


def totp_enrollment(svc: Services, current: SignedInUser, now: datetime) -> TotpEnrollment:
    """A new authenticator-app secret for this session's page (`enrollment.start_totp`)."""
    return start_totp(
        svc.ctx.store,
        svc.factor_keys,
        current.user,
        svc.relying_party.name,
        current.session.id_hash,
        now,
    )


def enroll_page(
    svc: Services,
    req: AuthorizationRequest,
    authz: str,
    current: SignedInUser,
    passkey_only: bool,
    now: datetime,
    error: str | None = None,
    status: int = 200,
) -> Response:
    """Set up a second factor now: a passkey, or (unless only a passkey will do) an
    authenticator app from its QR code."""
    challenge, state = passkey_challenge(svc.factor_keys, "register", current.user.id, now)
    try:
        options = script_json(
            registration_options(svc.ctx.store, svc.relying_party, current.user, challenge)
        )
        totp = None if passkey_only else totp_enrollment(svc, current, now)
    except FactorRefused as exc:
        options, totp, error = Markup(""), None, exc.message
    return page(
        svc,
        "enroll.html",
        status,
        form_targets=[origin(req.redirect_uri)],
        scripts=True,
        app_name=req.client.name,
        user_display_name=current.user.display_name,
        username=current.user.username,
        passkey_only=passkey_only,
        totp=totp,
        passkey_options=options,
        passkey_state=state,
        form_action=url(svc, "/oauth2/v1/login/enroll"),
        authz=authz,
        csrf_token=csrf_token(svc.csrf_key, "enroll", current.session.csrf_secret),
        error=error,
    )


def register_from_form(
    svc: Services, user: User, form: Mapping[str, str], now: datetime
) -> Passkey:
    """Register the passkey a page's form carries (`credential`, `state`, `name`); raises
    `FactorRefused`."""
    return register_passkey(
        svc.ctx.store,
        svc.factor_keys,
        svc.relying_party,
        user,
        form.get("credential", ""),
        form.get("state", ""),
        form.get("name", ""),
        now,
    )


def first_recovery_codes(
    svc: Services, user: User, next_url: str, form_targets: list[str | None]
) -> Response | None:
    """A first factor comes with recovery codes, shown this once (audited); None when the user
    has codes already."""
    store = svc.ctx.store
    if store.factors.recovery_codes(user.id):
        return None
    codes = new_recovery_codes(store, svc.factor_keys, user, svc.ctx.clock())
    svc.audit.record("mfa.recovery_codes_issued", user_id=user.id)
    return recovery_codes_page(svc, codes, next_url, form_targets)


def recovery_codes_page(
    svc: Services, codes: list[str], continue_url: str, form_targets: list[str | None]
) -> Response:
    """The new recovery codes, shown this once."""
    return page(
        svc,
        "recovery_codes.html",
        form_targets=form_targets,
        codes=codes,
        continue_url=continue_url,
    )
