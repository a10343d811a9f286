"""The OAuth 2.0 Device Authorization Grant (RFC 8628), framework-free.

- `authorize_device` is the device authorization endpoint (§3.1-§3.2): the authenticated app
  (public apps by `client_id`, §3.1), allowed the grant, asks for scopes validated as at the
  authorization endpoint; it gets a device code, a user code and where to enter it.
- User codes (§6.1): 8 characters of an alphabet without vowels or look-alikes, shown as
  two groups of four (`BCDF-GHJK`), entered in any case, with or without dashes and spaces
  (`normalize_user_code`).
- Both codes are stored as keyed hashes only (HMAC-SHA256 under a key of the domain, RFC 2104):
  the device code is 256 bits, the user code is looked up by the hash of its normal form.
- `find_for_entry` and `decide` are the verification page (§3.3): a signed-in user enters the
  code, sees the app and scopes, and approves or denies in one conditional write.
- `poll_outcome` is the token endpoint's answer for a request not yet approved (§3.5):
  `authorization_pending`, `slow_down` (polling before the interval has passed; the interval
  grows by 5 seconds for this and every later poll), `access_denied`, `expired_token`. The
  grant that redeems an approved request is `tessera.oauth.grants.device_code`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from tessera.domain.hashing import new_token
from tessera.domain.model import Client, DeviceAuthorization, Resource
from tessera.oauth import errors
from tessera.oauth.authorize import check_scope
from tessera.oauth.grant_types import DEVICE_CODE_GRANT
from tessera.oauth.interaction.login import SignedInUser
from tessera.oauth.interaction.requirements import (
    Outcome,
    SignInRules,
    assess,
    effective_policy,
    requested,
    user_factors,
)
from tessera.oauth.interaction.throttle import (
    ThrottleKeys,
    ThrottlePolicy,
    address_group,
)
from tessera.oauth.interaction.throttle import (
    decide as throttle_decision,
)
from tessera.store.protocols import (
    Conflict,
    DeviceAuthorizationStore,
    FactorStore,
    LoginThrottleStore,
)

__all__ = [
    "DEVICE_CODE_GRANT",
    "DEVICE_KEY_PURPOSE",
    "DEVICE_PAGE_PATH",
    "DEVICE_REQUEST_THROTTLE",
    "SLOW_DOWN_STEP",
    "USER_CODE_ALPHABET",
    "USER_CODE_THROTTLE",
    "DevicePolicy",
    "Entry",
    "PollOutcome",
    "authorize_device",
    "code_hash",
    "count_device_request",
    "decide",
    "device_code_valid",
    "enter_user_code",
    "find_for_entry",
    "format_user_code",
    "may_approve",
    "new_user_code",
    "normalize_user_code",
    "poll_outcome",
    "sign_in_outcome",
    "user_code_keys",
]

DEVICE_KEY_PURPOSE = "device codes"  # `Context.subkey`: the same key on every node
DEVICE_PAGE_PATH = "/device"  # the verification URI under the domain's issuer (§3.2)
# §6.1: "BCDFGHJKLMNPQRSTVWXZ": no vowels (no words), no digits (no 0/O, 1/I look-alikes).
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
USER_CODE_LENGTH = 8  # 20^8 ≈ 2^34.6; guessing is throttled on the page (§5.1)
SLOW_DOWN_STEP = 5  # §3.5: seconds added to the interval on each `slow_down`
# §5.1, docs/security.md rule 58: wrong user codes slow down the browser session and the
# address that enters them (the sign-in throttle's rule: growing waits, never a lockout), on
# the domain's throttle store.
USER_CODE_THROTTLE = ThrottlePolicy(
    window_seconds=900,
    free_per_pair=5,  # per browser session
    free_per_account=5,  # unused: no account key
    free_per_address=20,
    first_delay_seconds=60,
)
# docs/security.md rule 58: device authorization requests per client address group (a public
# app's client_id is no secret, and each request is a row), at most `free_per_address` a
# minute; the window's wait ends a minute after the last request counted.
DEVICE_REQUEST_THROTTLE = ThrottlePolicy(
    window_seconds=60,
    free_per_pair=0,  # unused: only the address key
    free_per_account=0,  # unused
    free_per_address=30,
    first_delay_seconds=60,
)
_MAX_DEVICE_CODE = 256
_DRAWS = 5  # user codes drawn before giving up (a collision among live codes is rare)


@dataclass(frozen=True, slots=True)
class DevicePolicy:
    """The domain's settings: how long a request lives and the first polling interval."""

    ttl: int = 600  # §3.2 `expires_in`
    interval: int = 5  # §3.2: "If no value is provided, clients MUST use 5 as the default"


def code_hash(key: bytes, value: str) -> str:
    """The stored form of a device code or a normalised user code: a keyed hash."""
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()


def new_user_code() -> str:
    """A fresh user code in normal form (8 characters of the alphabet)."""
    return "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(USER_CODE_LENGTH))


def format_user_code(code: str) -> str:
    """§6.1: shown as two groups of four with a dash between, e.g. `BCDF-GHJK`."""
    half = USER_CODE_LENGTH // 2
    return f"{code[:half]}-{code[half:]}"


def normalize_user_code(entered: str) -> str | None:
    """§6.1: case-insensitive, dashes and spaces ignored; None when it cannot be a user code
    (then no lookup is made, but the attempt still counts as a wrong code)."""
    if len(entered) > 64:
        return None
    code = "".join(c for c in entered.upper() if c not in "- \t")
    if len(code) != USER_CODE_LENGTH or any(c not in USER_CODE_ALPHABET for c in code):
        return None
    return code


# --- the device authorization endpoint (§3.1, §3.2) --------------------------------------------


def authorize_device(
    store: DeviceAuthorizationStore,
    client: Client,
    params: Mapping[str, str],
    resources: Sequence[Resource],
    now: datetime,
    *,
    key: bytes,
    policy: DevicePolicy,
    issuer: str,
) -> dict[str, Any]:
    """§3.1-§3.2 for the authenticated `client` (the caller refused repeated parameters): the
    answer's JSON body, or the `OAuthError` of §3.2 / RFC 6749 §5.2."""
    given = params.get("client_id")
    if given is not None and given != client.client_id:
        raise errors.InvalidRequest("client_id is not the authenticated client")
    if DEVICE_CODE_GRANT not in client.grant_types:
        raise errors.UnauthorizedClient("this app may not use the device authorization grant")
    scopes, audience = check_scope(params, client, resources)  # as the authorization endpoint
    device_code = new_token(32)
    for _ in range(_DRAWS):
        user_code = new_user_code()
        try:
            store.add(
                DeviceAuthorization(
                    device_code_hash=code_hash(key, device_code),
                    user_code_hash=code_hash(key, user_code),
                    client_id=client.client_id,
                    scopes=scopes,
                    audience=audience,
                    created_at=now,
                    expires_at=now + timedelta(seconds=policy.ttl),
                    interval=policy.interval,
                )
            )
            break
        except Conflict:
            continue
    else:
        raise errors.TemporarilyUnavailable("no free user code; try again")
    page = issuer + DEVICE_PAGE_PATH
    shown = format_user_code(user_code)
    return {
        "device_code": device_code,
        "user_code": shown,
        "verification_uri": page,
        "verification_uri_complete": f"{page}?{urlencode({'user_code': shown})}",  # §3.3.1
        "expires_in": policy.ttl,
        "interval": policy.interval,
    }


def count_device_request(
    throttle: LoginThrottleStore,
    ip: str,
    now: datetime,
    policy: ThrottlePolicy = DEVICE_REQUEST_THROTTLE,
) -> None:
    """§3.1 behind a rate limit per client address group (RFC 6585 §4): raises
    `TooManyRequests` while the address waits, else counts this request."""
    keys = ThrottleKeys(f"device-start:{address_group(ip)}", None, None, None)
    recent = throttle.recent(keys.checked(), now - policy.window)
    verdict = throttle_decision(keys, recent, now, policy)
    if not verdict.allowed:
        raise errors.TooManyRequests(verdict.retry_after)
    throttle.record_failure(keys.address, now)


# --- the verification page (§3.3) --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Entry:
    """What the user's entry found: the pending request, or why there is none to decide."""

    authorization: DeviceAuthorization | None
    # "unknown" (counts as a wrong code), "expired", "decided" or "throttled"
    problem: str | None
    user_code: str | None  # the normal form, when the entry had one
    retry_after: int = 0  # seconds, when "throttled"


def find_for_entry(
    store: DeviceAuthorizationStore, key: bytes, entered: str, now: datetime
) -> Entry:
    """The pending request with the user code `entered`, or the problem with it."""
    code = normalize_user_code(entered)
    if code is None:
        return Entry(None, "unknown", None)
    found = store.find(code_hash(key, code))
    if found is None:
        return Entry(None, "unknown", code)
    if found.expires_at <= now:
        return Entry(None, "expired", code)
    if found.status != "pending":
        return Entry(None, "decided", code)
    return Entry(found, None, code)


def user_code_keys(session_id: str, ip: str) -> ThrottleKeys:
    """The throttle keys of an entry: the browser session and the client's address group."""
    return ThrottleKeys(
        address=f"device-ip:{address_group(ip)}",
        pair=f"device-session:{session_id}",
        account=None,
        device=None,
    )


def enter_user_code(
    store: DeviceAuthorizationStore,
    throttle: LoginThrottleStore,
    key: bytes,
    entered: str,
    keys: ThrottleKeys,
    now: datetime,
    policy: ThrottlePolicy = USER_CODE_THROTTLE,
) -> Entry:
    """`find_for_entry` behind the throttle (§5.1): while the session or the address waits,
    nothing is looked up; an unknown code counts on both keys."""
    recent = throttle.recent(keys.checked(), now - policy.window)
    verdict = throttle_decision(keys, recent, now, policy)
    if not verdict.allowed:
        return Entry(None, "throttled", None, verdict.retry_after)
    entry = find_for_entry(store, key, entered, now)
    if entry.problem == "unknown":
        for name in keys.recorded():
            throttle.record_failure(name, now)
    return entry


def sign_in_outcome(
    factors: FactorStore, current: SignedInUser, client: Client, rules: SignInRules
) -> Outcome:
    """Whether the session's sign-in is enough for the app that asks (the stricter of the
    domain's and the app's second-factor policy, docs/mfa.md), as at the authorization
    endpoint; else the step that is missing. Denying needs no more than being signed in."""
    policy = effective_policy(rules.mfa_policy, client.mfa_policy)
    found = user_factors(factors, current.user.id)
    return assess(current.session.amr, current.user, found, policy, rules, requested((), False))


def may_approve(
    current: SignedInUser, authorization: DeviceAuthorization, admin_scopes: frozenset[str]
) -> bool:
    """Only administrators may give an app the admin scopes, as at the authorization
    endpoint (docs/security.md); anybody may deny."""
    return current.user.is_admin or admin_scopes.isdisjoint(authorization.scopes)


def decide(
    store: DeviceAuthorizationStore,
    key: bytes,
    user_code: str,
    current: SignedInUser,
    approve: bool,
    now: datetime,
) -> bool:
    """§3.3: the signed-in user's decision on the pending request with `user_code` (normal
    form), with the session's sign-in (its time and methods go into the tokens); one
    conditional write, so a request is decided once. False when it is no longer pending."""
    decided = DeviceAuthorization(
        device_code_hash="",
        user_code_hash="",
        client_id="",
        scopes=(),
        audience=None,
        created_at=now,
        expires_at=now,
        interval=0,
        status="approved" if approve else "denied",
        user_id=current.user.id,
        auth_time=current.session.auth_time,
        amr=current.session.amr,
        session_id=current.session.id_hash,
    )
    return store.decide(code_hash(key, user_code), decided, now)


# --- polling at the token endpoint (§3.4, §3.5) ------------------------------------------------


@dataclass(frozen=True, slots=True)
class PollOutcome:
    """The answer to a poll of a request that yields no token now. `record`: the poll to
    write (compare-and-set over `authorization.polls`) with the interval from now on."""

    error: errors.OAuthError
    record: DeviceAuthorization | None = None


def device_code_valid(value: str | None) -> str:
    """§3.4: `device_code` is required; an absurd one is unknown (`invalid_grant`)."""
    if not value:
        raise errors.InvalidRequest("device_code is required")
    if len(value) > _MAX_DEVICE_CODE:
        raise errors.InvalidGrant("unknown, used or expired device code")
    return value


def poll_outcome(authorization: DeviceAuthorization, now: datetime) -> PollOutcome | None:
    """§3.5 for a request of the polling app: None when it is approved (redeem it); else the
    error to answer. Once redeemed, `invalid_grant` (a device code yields tokens once)."""
    if authorization.redeemed_at is not None:
        return PollOutcome(errors.InvalidGrant("the device code was used"))
    if authorization.expires_at <= now:
        return PollOutcome(errors.ExpiredToken("the device code expired: start again"))
    if authorization.status == "denied":
        return PollOutcome(errors.DeviceAccessDenied("the user denied the request"))
    if authorization.status == "approved":
        return None
    # §3.5: a client waits the interval before its first poll too (§3.2 gives it with the
    # codes): the request's creation counts as the last poll.
    last = authorization.last_polled_at or authorization.created_at
    if now - last < timedelta(seconds=authorization.interval):
        # §3.5: "the interval MUST be increased by 5 seconds for this and all subsequent
        # requests".
        interval = authorization.interval + SLOW_DOWN_STEP
        return PollOutcome(
            errors.SlowDown(f"poll at most every {interval} seconds"),
            replace(authorization, interval=interval, last_polled_at=now),
        )
    return PollOutcome(
        errors.AuthorizationPending("the user has not approved the request yet"),
        replace(authorization, last_polled_at=now),
    )
