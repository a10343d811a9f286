"""Administrators and users' second factors (docs/mfa.md): what a user holds, resetting it,
and the domain's sign-in policy.

An administrator sees a user's passkeys (name, when made and last used, synced or bound to a
device, the authenticator model's AAGUID), whether an authenticator app is set up and how many
recovery codes are left — never a public key, a TOTP secret or a code hash. A reset removes
factors and ends the user's browser sessions, so the next sign-in uses what is left (or enrolls
again where the policy requires a factor). Shared by the admin API and the CLI; audited through
the caller's `Actor`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tessera.domain.identity_domains import MFA_POLICIES
from tessera.domain.model import User
from tessera.manage.audit import Actor
from tessera.manage.domains import update_domain
from tessera.manage.errors import InvalidInput, NotFoundError
from tessera.manage.users import find_user
from tessera.manage.views import iso
from tessera.store.protocols import Store

__all__ = [
    "FACTOR_KINDS",
    "FactorsReset",
    "checked_kind",
    "checked_policy",
    "factors_view",
    "reset_factors",
    "set_sign_in_policy",
    "sign_in_policy",
]

# What `reset_factors` may remove: everything, or one kind.
FACTOR_KINDS = ("all", "passkeys", "totp", "recovery")
# The domain's policy when its row sets none (`SignInRules`' default).
_DEFAULT_POLICY = "optional"


def factors_view(store: Store, user: User) -> dict[str, Any]:
    """The user's second factors as an administrator sees them."""
    factors = store.factors
    totp = factors.totp(user.id)
    codes = factors.recovery_codes(user.id)
    passkeys = [
        {
            "credential_id": p.credential_id,
            "name": p.name,
            "created_at": iso(p.created_at),
            "last_used_at": iso(p.last_used_at),
            "synced": p.backed_up,
            "aaguid": p.aaguid or None,
        }
        for p in factors.passkeys_for(user.id)
    ]
    app = None
    if totp is not None:
        confirmed = totp.confirmed_at is not None
        app = {
            "status": "active" if confirmed else "pending",
            "since": iso(totp.confirmed_at if confirmed else totp.created_at),
        }
    left = sum(1 for c in codes if c.used_at is None)
    return {
        "user_id": user.id,
        "username": user.username,
        "passkeys": passkeys,
        "authenticator_app": app,
        "recovery_codes": {
            "left": left,
            "total": len(codes),
            "created_at": iso(min(c.created_at for c in codes)) if codes else None,
        },
        # A factor that signs in (recovery codes only back the others up).
        "has_second_factor": bool(passkeys) or (app is not None and app["status"] == "active"),
    }


@dataclass(frozen=True, slots=True)
class FactorsReset:
    user: User
    passkeys: int
    totp: int  # 0 or 1 (a pending enrollment counts)
    recovery_codes: int
    sessions: int  # browser sessions ended

    def view(self) -> dict[str, Any]:
        return {
            "user_id": self.user.id,
            "username": self.user.username,
            "removed": {
                "passkeys": self.passkeys,
                "authenticator_app": self.totp,
                "recovery_codes": self.recovery_codes,
            },
            "sessions_ended": self.sessions,
        }


def checked_kind(what: str) -> str:
    """What a reset removes: all, passkeys, totp or recovery."""
    if what not in FACTOR_KINDS:
        raise InvalidInput(f"cannot reset {what!r}: give one of {', '.join(FACTOR_KINDS)}")
    return what


def reset_factors(
    store: Store, ref: str, now: datetime, actor: Actor, *, what: str = "all"
) -> FactorsReset:
    """Remove the user's factors (`what`: all, passkeys, totp or recovery) and end the user's
    sessions: a session signed in with a removed factor must not outlive it."""
    checked_kind(what)
    user = find_user(store, ref)
    factors = store.factors
    passkeys = factors.passkeys_for(user.id) if what in ("all", "passkeys") else []
    totp = factors.totp(user.id) if what in ("all", "totp") else None
    codes = factors.recovery_codes(user.id) if what in ("all", "recovery") else []
    if what == "all":
        factors.remove_all(user.id)
    for passkey in passkeys if what == "passkeys" else ():
        factors.remove_passkey(user.id, passkey.credential_id)
    if what == "totp":
        factors.remove_totp(user.id)
    if what == "recovery":
        factors.replace_recovery_codes(user.id, [], now)
    sessions = store.sessions.end_all_for_user(user.id, now)
    done = FactorsReset(user, len(passkeys), int(totp is not None), len(codes), sessions)
    actor.audit(
        "admin.user_factors_reset",
        user_id=user.id,
        what=what,
        passkeys=done.passkeys,
        authenticator_app=done.totp,
        recovery_codes=done.recovery_codes,
        sessions=sessions,
    )
    return done


def checked_policy(value: object, what: str = "mfa_policy") -> str | None:
    """A second-factor policy ("off", "optional", "required") or None (the default)."""
    if value is None or (isinstance(value, str) and value in MFA_POLICIES):
        return value
    raise InvalidInput(f"{what} must be one of: {', '.join(MFA_POLICIES)} (or unset)")


def sign_in_policy(store: Store) -> dict[str, Any]:
    """The domain's second-factor rules as they apply (`optional` and not required of
    administrators when its row sets nothing)."""
    domain = store.domains.get(store.domain_id)
    if domain is None:
        raise NotFoundError("this identity domain no longer exists")
    settings = domain.settings
    return {
        "domain": domain.name,
        "mfa_policy": settings.mfa_policy or _DEFAULT_POLICY,
        "admin_mfa_required": bool(settings.admin_mfa_required),
    }


_KEEP: Any = object()


def set_sign_in_policy(
    store: Store,
    *,
    base_issuer: str,
    now: datetime,
    actor: Actor,
    mfa_policy: str | None = _KEEP,
    admin_mfa_required: bool | None = _KEEP,
) -> dict[str, Any]:
    """Set the domain's policy and/or whether every administrator needs a second factor (None:
    back to the default); what is not given is kept. Written to the domain's row through
    `update_domain` (which audits `admin.domain_updated`); audited `admin.sign_in_policy_set`
    with the values, in the domain's log."""
    changes: dict[str, Any] = {}
    if mfa_policy is not _KEEP:
        changes["mfa_policy"] = checked_policy(mfa_policy)
    if admin_mfa_required is not _KEEP:
        if admin_mfa_required is not None and not isinstance(admin_mfa_required, bool):
            raise InvalidInput("admin_mfa_required must be true or false")
        changes["admin_mfa_required"] = admin_mfa_required
    if not changes:
        raise InvalidInput("nothing to change: give mfa_policy or admin_mfa_required")
    before = sign_in_policy(store)
    update_domain(
        store, store.domain_id, base_issuer=base_issuer, actor=actor, now=now, settings=changes
    )
    after = sign_in_policy(store)
    actor.audit(
        "admin.sign_in_policy_set",
        mfa_policy=after["mfa_policy"],
        admin_mfa_required=after["admin_mfa_required"],
        changed=sorted(k for k in ("mfa_policy", "admin_mfa_required") if before[k] != after[k]),
    )
    return after
