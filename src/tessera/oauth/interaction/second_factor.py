"""Checking a second factor, and signing in with a passkey alone (docs/mfa.md).

A TOTP code (RFC 6238) is accepted once: the store keeps the last accepted time step and
accepts a later one in one conditional write. A recovery code is marked used in one
conditional write. A passkey assertion (W3C WebAuthn Level 3 §7.2) answers a challenge issued
by us and accepted once (`store.nonces`), and its signature counter is stored with a
compare-and-set, so two uses of one assertion cannot both pass. Wrong codes are counted on the
login throttle (per account and per address) like wrong passwords, and a wait refuses the
attempt before the code is checked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from tessera.domain.model import Passkey, User
from tessera.oauth.factors import challenges, passkeys, recovery, totp
from tessera.oauth.interaction.throttle import ThrottleKeys, ThrottlePolicy, address_group, decide
from tessera.shared.sealing import Sealer, SealError
from tessera.store.protocols import Store

__all__ = [
    "FactorKeys",
    "FactorRefused",
    "PasskeySignIn",
    "RelyingParty",
    "accept_challenge",
    "check_code",
    "check_passkey",
    "open_totp_secret",
    "passkey_challenge",
    "seal_totp_secret",
]

CHALLENGE_TTL = 300  # seconds a WebAuthn ceremony may take


@dataclass(frozen=True, slots=True)
class FactorKeys:
    """The domain's keys for factors, derived from TESSERA_SECRET_KEY."""

    sealing: bytes  # seals TOTP secrets
    recovery: bytes  # keys the recovery codes' hashes
    challenges: bytes  # MACs WebAuthn challenge states


@dataclass(frozen=True, slots=True)
class RelyingParty:
    """W3C WebAuthn §5.1.4: the RP ID is the issuer's host name, the origin its scheme, host
    and port; passkeys of two domains on one host share the RP ID, and each domain finds only
    its own credentials."""

    id: str
    origin: str
    name: str


class FactorRefused(Exception):
    """A code or assertion that does not pass; `message` is for the user, `retry_after` is set
    when the attempt was refused unchecked (too many failures)."""

    def __init__(self, message: str, *, retry_after: int = 0, audit: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after
        self.audit = (audit or message)[:300]


def _sealer_data(store: Store, user_id: str) -> bytes:
    return f"totp|{store.domain_id}|{user_id}".encode()


def seal_totp_secret(store: Store, keys: FactorKeys, user_id: str, secret: str) -> bytes:
    return Sealer(keys.sealing).seal(secret.encode("ascii"), _sealer_data(store, user_id))


def open_totp_secret(store: Store, keys: FactorKeys, user_id: str, sealed: bytes) -> str:
    return Sealer(keys.sealing).open(sealed, _sealer_data(store, user_id)).decode("ascii")


def _throttle_keys(user_id: str, ip: str) -> ThrottleKeys:
    return ThrottleKeys(
        address=f"ip:{address_group(ip)}", pair=None, account=f"mfa:{user_id}", device=None
    )


def _throttled(store: Store, policy: ThrottlePolicy, keys: ThrottleKeys, now: datetime) -> None:
    recent = store.login_throttle.recent(keys.checked(), now - policy.window)
    verdict = decide(keys, recent, now, policy)
    if not verdict.allowed:
        raise FactorRefused(
            "Too many wrong codes. Wait a moment and try again.",
            retry_after=verdict.retry_after,
            audit="throttled",
        )


def _failed(store: Store, keys: ThrottleKeys, now: datetime, message: str, audit: str) -> None:
    for key in keys.recorded():
        store.login_throttle.record_failure(key, now)
    raise FactorRefused(message, audit=audit)


def check_code(
    store: Store,
    keys: FactorKeys,
    policy: ThrottlePolicy,
    user: User,
    method: str,
    code: str,
    ip: str,
    now: datetime,
) -> tuple[str, ...]:
    """Check an authenticator-app code (`totp`) or a recovery code (`recovery`); the amr
    methods it adds. Raises `FactorRefused` (the failure is counted)."""
    throttle = _throttle_keys(user.id, ip)
    _throttled(store, policy, throttle, now)
    if method == "totp":
        factor = store.factors.totp(user.id)
        if factor is None or factor.confirmed_at is None:
            raise FactorRefused("No authenticator app is set up for this account.")
        try:
            secret = open_totp_secret(store, keys, user.id, factor.secret_sealed)
        except SealError:
            raise FactorRefused(
                "The authenticator app cannot be used; ask an administrator."
            ) from None
        step = totp.matching_step(secret, code, now, factor.last_step)
        if step is None or not store.factors.use_totp_step(user.id, step):
            _failed(store, throttle, now, "That code is not valid. Enter the current code.", "totp")
        return ("otp",)
    if method == "recovery":
        digest = recovery.code_hash(keys.recovery, code) if recovery.normalize(code) else ""
        if not digest or not store.factors.use_recovery_code(user.id, digest, now):
            _failed(
                store, throttle, now, "That recovery code is not valid or was used.", "recovery"
            )
        return ("otp",)
    raise FactorRefused("Choose a way to confirm it is you.")


def passkey_challenge(
    keys: FactorKeys, purpose: str, subject: str, now: datetime
) -> tuple[bytes, str]:
    """A fresh challenge and its signed state for the page (`subject`: the browser or user)."""
    return challenges.issue(keys.challenges, purpose, subject, now, CHALLENGE_TTL)


@dataclass(frozen=True, slots=True)
class PasskeySignIn:
    passkey: Passkey
    methods: tuple[str, ...]  # amr: hwk/swk, and user when the authenticator verified the user


def accept_challenge(
    store: Store, keys: FactorKeys, state: str, purpose: str, subject: str, now: datetime
) -> bytes:
    try:
        challenge = challenges.open_state(keys.challenges, state, purpose, subject, now)
    except challenges.ChallengeError as exc:
        raise FactorRefused("The passkey request expired. Try again.", audit=exc.message) from None
    expires = now + timedelta(seconds=CHALLENGE_TTL)
    if not store.nonces.use_once("webauthn:" + challenge.hex(), expires, now):
        raise FactorRefused("This passkey response was used already. Try again.", audit="replay")
    return challenge


def check_passkey(
    store: Store,
    keys: FactorKeys,
    rp: RelyingParty,
    response_json: str,
    state: str,
    *,
    purpose: str,
    subject: str,
    user_id: str | None,
    now: datetime,
    lookup_user: Callable[[str], User | None] | None = None,
) -> PasskeySignIn:
    """Verify an assertion for the challenge in `state`. With `user_id` (a second factor) the
    passkey must be that user's; without (a passwordless sign-in) the user is the passkey's,
    and the authenticator must have verified the user (W3C WebAuthn §7.2 step 17)."""
    challenge = accept_challenge(store, keys, state, purpose, subject, now)
    try:
        credential_id = passkeys.credential_id_of(response_json)
        handle = passkeys.user_handle_of(response_json)
    except passkeys.PasskeyError as exc:
        raise FactorRefused(exc.message, audit=f"malformed: {exc.detail}") from None
    stored = store.factors.passkey(credential_id)
    # W3C WebAuthn §7.2 step 6: the user the authenticator names must own the credential.
    if (
        stored is None
        or (user_id is not None and stored.user_id != user_id)
        or (handle is not None and handle != stored.user_id)
    ):
        raise FactorRefused("This passkey is not registered for this account.", audit="unknown")
    try:
        assertion = passkeys.verify_authentication(
            response_json,
            challenge=challenge,
            rp_id=rp.id,
            origin=rp.origin,
            public_key=stored.public_key,
            sign_count=stored.sign_count,
            require_user_verification=user_id is None,
        )
    except passkeys.ClonedAuthenticator:
        raise FactorRefused(
            "This passkey may have been copied, so it was refused. Use another way to sign in "
            "and remove it from your account.",
            audit="cloned",
        ) from None
    except passkeys.PasskeyError as exc:
        raise FactorRefused(exc.message, audit=f"invalid: {exc.detail}") from None
    if not store.factors.use_passkey(
        credential_id, stored.sign_count, assertion.new_sign_count, now
    ):
        raise FactorRefused(
            "This passkey was used at the same moment elsewhere. Try again.", audit="race"
        )
    return PasskeySignIn(stored, passkeys.methods_for(assertion.backed_up, assertion.user_verified))
