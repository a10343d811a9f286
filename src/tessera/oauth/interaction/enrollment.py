"""A user's own factors: enroll an authenticator app or a passkey, new recovery codes, rename
and remove (docs/mfa.md).

An authenticator app is enrolled in two steps: `start_totp` makes a secret and seals it into
the page's form for this session only, `confirm_totp` stores it with a first valid code (whose
time step counts as used). A passkey is registered from a `navigator.credentials.create()`
response to a challenge of ours, accepted once. The first factor comes with recovery codes (10,
shown once, stored as keyed hashes). Removing the user's last factor is refused while the user
must hold one.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime

from tessera.domain.model import Passkey, TotpFactor, User
from tessera.oauth.factors import passkeys, recovery, totp
from tessera.oauth.interaction.account import enabled_providers, way_left
from tessera.oauth.interaction.requirements import SignInRules, user_factors
from tessera.oauth.interaction.second_factor import (
    FactorKeys,
    FactorRefused,
    RelyingParty,
    accept_challenge,
    seal_totp_secret,
)
from tessera.shared.sealing import Sealer, SealError
from tessera.store.protocols import Conflict, Store

__all__ = [
    "ENROLLMENT_TTL",
    "MAX_PASSKEYS",
    "TotpEnrollment",
    "confirm_totp",
    "factor_required",
    "new_recovery_codes",
    "register_passkey",
    "registration_options",
    "remove_passkey",
    "remove_totp",
    "rename_passkey",
    "start_totp",
]

MAX_PASSKEYS = 20
ENROLLMENT_TTL = 900  # seconds to scan the code and type the first one
_MAX_NAME = 64


@dataclass(frozen=True, slots=True)
class TotpEnrollment:
    secret: str  # base32, shown as text for apps that cannot scan
    uri: str  # otpauth:// (the QR code's content)
    qr_svg: str
    state: str  # the secret sealed for the form that confirms it (`confirm_totp`)


def factor_required(user: User, rules: SignInRules) -> bool:
    """Whether the user must hold a factor: the domain requires one, or of administrators."""
    return rules.mfa_policy == "required" or (user.is_admin and rules.admin_mfa_required)


def _enrollment_data(store: Store, user_id: str, binding: str, expires: int) -> bytes:
    return f"totp-enrollment|{store.domain_id}|{user_id}|{binding}|{expires}".encode()


def start_totp(
    store: Store, keys: FactorKeys, user: User, issuer_label: str, binding: str, now: datetime
) -> TotpEnrollment:
    """A new secret for the page, stored nowhere yet: it travels in the page's form sealed
    (AES-GCM) for this user and this session (`binding`) and for `ENROLLMENT_TTL`, so no
    other session can see or confirm it (a secret waiting in the database could be planted by
    someone who knows only the password, and shown to the user to confirm)."""
    existing = store.factors.totp(user.id)
    if existing is not None and existing.confirmed_at is not None:
        raise FactorRefused("An authenticator app is set up already; remove it first.")
    secret = totp.new_secret()
    expires = int(now.timestamp()) + ENROLLMENT_TTL
    sealed = Sealer(keys.sealing).seal(
        secret.encode("ascii"), _enrollment_data(store, user.id, binding, expires)
    )
    state = f"{expires}.{base64.urlsafe_b64encode(sealed).decode('ascii')}"
    uri = totp.provisioning_uri(secret, user.username, issuer_label)
    return TotpEnrollment(secret, uri, totp.qr_svg(uri), state)


def _open_enrollment(
    store: Store, keys: FactorKeys, user: User, state: str, binding: str, now: datetime
) -> str:
    expired = FactorRefused("This set-up expired or is not yours. Start it again.")
    expires_text, _, sealed_text = state.partition(".")
    if len(state) > 400 or not expires_text.isascii() or not expires_text.isdigit():
        raise expired
    if int(expires_text) <= now.timestamp():
        raise expired
    try:
        sealed = base64.urlsafe_b64decode(sealed_text.encode("ascii"))
        data = _enrollment_data(store, user.id, binding, int(expires_text))
        return Sealer(keys.sealing).open(sealed, data).decode("ascii")
    except (ValueError, SealError):
        raise expired from None


def confirm_totp(
    store: Store,
    keys: FactorKeys,
    user: User,
    state: str,
    binding: str,
    code: str,
    now: datetime,
) -> None:
    """Set up the authenticator app of `state` with a first valid code, whose time step counts
    as used: one write that fails over an app set up meanwhile. Raises `FactorRefused`."""
    secret = _open_enrollment(store, keys, user, state, binding, now)
    step = totp.matching_step(secret, code, now, 0)
    if step is None:
        raise FactorRefused("That code is not valid. Check the time on your phone and try again.")
    sealed = seal_totp_secret(store, keys, user.id, secret)
    try:
        store.factors.put_totp(TotpFactor(user.id, sealed, now, confirmed_at=now, last_step=step))
    except Conflict:
        raise FactorRefused("An authenticator app is set up already; remove it first.") from None


def registration_options(store: Store, rp: RelyingParty, user: User, challenge: bytes) -> str:
    """The options for `navigator.credentials.create()`; the user's passkeys are excluded."""
    existing = store.factors.passkeys_for(user.id)
    if len(existing) >= MAX_PASSKEYS:
        raise FactorRefused(f"An account holds at most {MAX_PASSKEYS} passkeys; remove one first.")
    return passkeys.registration_options(
        rp_id=rp.id,
        rp_name=rp.name,
        user_id=user.id,
        user_name=user.username,
        display_name=user.display_name,
        challenge=challenge,
        exclude=[p.credential_id for p in existing],
    )


def _passkey_name(name: str, count: int) -> str:
    cleaned = " ".join(name.split())[:_MAX_NAME]
    return cleaned or f"Passkey {count + 1}"


def register_passkey(
    store: Store,
    keys: FactorKeys,
    rp: RelyingParty,
    user: User,
    response_json: str,
    state: str,
    name: str,
    now: datetime,
) -> Passkey:
    """Verify a registration response for the challenge in `state` and store the passkey."""
    challenge = accept_challenge(store, keys, state, "register", user.id, now)
    try:
        created = passkeys.verify_registration(
            response_json, challenge=challenge, rp_id=rp.id, origin=rp.origin
        )
    except passkeys.PasskeyError as exc:
        raise FactorRefused(exc.message, audit=f"invalid: {exc.detail}") from None
    count = len(store.factors.passkeys_for(user.id))
    passkey = Passkey(
        credential_id=created.credential_id,
        user_id=user.id,
        name=_passkey_name(name, count),
        public_key=created.public_key,
        sign_count=created.sign_count,
        created_at=now,
        aaguid=created.aaguid,
        transports=created.transports,
        backed_up=created.backed_up,
    )
    try:
        store.factors.add_passkey(passkey)
    except Conflict:
        raise FactorRefused("This passkey is registered already.", audit="duplicate") from None
    return passkey


def new_recovery_codes(store: Store, keys: FactorKeys, user: User, now: datetime) -> list[str]:
    """Replace the user's recovery codes; the codes, to show once."""
    codes = recovery.new_codes(10)
    store.factors.replace_recovery_codes(
        user.id, [recovery.code_hash(keys.recovery, c) for c in codes], now
    )
    return codes


def _refuse_last(store: Store, user: User, rules: SignInRules, leaving: int) -> None:
    factors = user_factors(store.factors, user.id)
    left = len(factors.passkeys) + (1 if factors.totp else 0) - leaving
    if left <= 0 and factor_required(user, rules):
        raise FactorRefused(
            "This is your last second factor and your organisation requires one: add another "
            "before removing it."
        )


def rename_passkey(store: Store, user: User, credential_id: str, name: str) -> None:
    if not store.factors.rename_passkey(user.id, credential_id, _passkey_name(name, 0)):
        raise FactorRefused("That passkey is not registered for your account.")


def remove_passkey(
    store: Store, user: User, rules: SignInRules, credential_id: str, now: datetime
) -> None:
    mine = store.factors.passkeys_for(user.id)
    if not any(p.credential_id == credential_id for p in mine):
        raise FactorRefused("That passkey is not registered for your account.")
    _refuse_last(store, user, rules, 1)
    enabled = enabled_providers(store.upstream_providers)
    links = [
        i for i in store.federated_identities.list_for_user(user.id) if i.provider_id in enabled
    ]
    if not way_left(user, links=len(links), passkeys=len(mine) - 1):
        raise FactorRefused(
            "This passkey is your only way to sign in: set a password first (on your password "
            "page), or link a sign-in provider."
        )
    if not store.factors.remove_passkey(user.id, credential_id):
        raise FactorRefused("That passkey is not registered for your account.")
    _drop_orphan_codes(store, user, now)


def remove_totp(store: Store, user: User, rules: SignInRules, now: datetime) -> None:
    _refuse_last(store, user, rules, 1)
    if not store.factors.remove_totp(user.id):
        raise FactorRefused("No authenticator app is set up for your account.")
    _drop_orphan_codes(store, user, now)


def _drop_orphan_codes(store: Store, user: User, now: datetime) -> None:
    """Recovery codes back a factor up: without any factor they go too."""
    if not user_factors(store.factors, user.id).any:
        store.factors.replace_recovery_codes(user.id, [], now)
