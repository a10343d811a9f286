"""Which local account an upstream account is (docs/federation.md, "Accounts"; docs/security.md
rule 66).

An upstream account is known by its provider and `sub` (OIDC Core §2: "locally unique and never
reassigned within the Issuer"; §5.7: only `iss` and `sub` identify the user, e-mail and names
can change and be chosen). `map_claims` reads the claims the provider sent (the ID token,
completed by the userinfo response, OIDC Core §5.3.2; `email_verified`, §5.1) through the
provider's claim mapping; `plan_account` decides, reading only; `resolve_account` carries the
decision out: a known link, a link by e-mail verified upstream and here when the administrator
allowed it (never to an administrator), a just-in-time account (user, link and memberships in
one transaction), or a refusal that writes nothing.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from tessera.domain.emails import is_email
from tessera.domain.model import FederatedIdentity, UpstreamProvider, User
from tessera.domain.usernames import MAX_USERNAME, valid_username
from tessera.oauth.federation.errors import Refused
from tessera.shared.jwt_parts import is_numeric_date
from tessera.store.protocols import Conflict, NotFound, Store

__all__ = [
    "MAX_GROUPS",
    "Account",
    "Plan",
    "Refused",
    "UpstreamClaims",
    "link_identity",
    "map_claims",
    "plan_account",
    "resolve_account",
]

MAX_GROUPS = 100
_MAX_NAME = 200  # as tessera.manage.errors.checked_name
_DISABLED = "This account is disabled."

Action = Literal["existing", "link", "create"]


@dataclass(frozen=True, slots=True)
class UpstreamClaims:
    """What an upstream sign-in says about the user, through the provider's claim mapping."""

    provider_id: str
    subject: str
    email: str | None
    email_verified: bool
    username: str  # a valid username (domain.usernames); may be taken here
    display_name: str
    groups: tuple[str, ...] = ()
    # The groups claim was sent, whole (a list of at most MAX_GROUPS names): only then may a
    # provider whose claim is the whole truth end memberships (`sync_groups`).
    groups_complete: bool = False
    upstream_amr: tuple[str, ...] = ()
    # When the provider authenticated the user (the ID token's `auth_time`), if it said.
    auth_time: float | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    """What a sign-in with these claims does: use a linked account (`existing`), link an
    account with the same verified e-mail (`link`), or create one (`create`: `user` is the
    new account, not stored yet). `group_ids`: the existing groups named upstream that the
    user is to join (for `create`, all of them; else those the user is not in yet);
    `leave_ids`: for a provider with `sync_groups`, the groups whose membership an earlier
    sign-in through it made that the groups claim no longer names."""

    action: Action
    user: User
    group_ids: tuple[str, ...] = ()
    leave_ids: tuple[str, ...] = ()

    def describe(self) -> str:
        """One sentence for the administrator's test page."""
        groups = "".join(
            f", and {verb} {len(ids)} group(s)"
            for verb, ids in (("join", self.group_ids), ("leave", self.leave_ids))
            if ids
        )
        if self.action == "existing":
            return f"Sign in as {self.user.username}, who is linked already{groups}."
        if self.action == "link":
            return f"Link this account to {self.user.username} (same verified e-mail){groups}."
        return f"Create the account {self.user.username}{groups}."


@dataclass(frozen=True, slots=True)
class Account:
    """The local account of a federated sign-in; `outcome` for the audit log: `signed-in`
    (linked already), `linked` (`federation.linked`) or `created` (`federation.user_created`)."""

    user: User
    outcome: Literal["signed-in", "linked", "created"]
    group_ids: tuple[str, ...] = ()  # the memberships this sign-in added
    left_ids: tuple[str, ...] = ()  # and those it ended (`sync_groups`)


# --- the claims --------------------------------------------------------------------------------


def _email(value: Any) -> str | None:
    """An address shaped as the domain's users' addresses must be (`is_email`), else None."""
    return value if is_email(value) else None


def _name(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    name = value.strip()
    if not 0 < len(name) <= _MAX_NAME or not name.isprintable():
        return None
    return name


def _groups(value: Any) -> tuple[tuple[str, ...], bool]:
    """Group names: strings only (others ignored), at most `MAX_GROUPS`; and whether that is
    the whole claim (a list, not cut short)."""
    if not isinstance(value, list):
        return (), False
    names = (g.strip() for g in value if isinstance(g, str))
    found = tuple(dict.fromkeys(g for g in names if 0 < len(g) <= _MAX_NAME and g.isprintable()))
    return found[:MAX_GROUPS], len(found) <= MAX_GROUPS


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


def map_claims(
    provider: UpstreamProvider,
    id_claims: Mapping[str, Any],
    userinfo: Mapping[str, Any] | None = None,
) -> UpstreamClaims:
    """The mapped claims (OIDC Core §5.1 names): userinfo completes and overrides the ID
    token, except `sub` (§5.3.2 made them equal). `email_verified` counts when it is JSON
    true (or the string "true", which some providers send) and comes with the address it
    speaks for (from userinfo when userinfo gave the address). The username: the
    `username_claim`, else the e-mail's local part, else `<provider name>-<8 hex of sha256(sub)>`,
    the first that is a valid username. Groups from `groups_claim` when set."""
    subject = str(id_claims["sub"])
    merged = {**id_claims, **(userinfo or {}), "sub": subject}
    email_source = userinfo if userinfo and provider.email_claim in userinfo else id_claims
    email = _email(email_source.get(provider.email_claim))
    verified = email_source.get("email_verified")
    email_verified = email is not None and (verified is True or verified == "true")
    candidates = [merged.get(provider.username_claim)]
    if email is not None:
        candidates.append(email.rpartition("@")[0])
    username = next(
        (c for c in candidates if isinstance(c, str) and valid_username(c)),
        f"{provider.name}-{_digest(subject)[:8]}",
    )
    amr = id_claims.get("amr")
    auth_time = id_claims.get("auth_time")  # a NumericDate: validate_id_token checked it
    groups, complete = (
        _groups(merged.get(provider.groups_claim)) if provider.groups_claim else ((), False)
    )
    return UpstreamClaims(
        provider_id=provider.id,
        subject=subject,
        email=email,
        email_verified=email_verified,
        username=username,
        display_name=_name(merged.get(provider.name_claim)) or username,
        groups=groups,
        groups_complete=complete,
        upstream_amr=tuple(m for m in amr if isinstance(m, str)) if isinstance(amr, list) else (),
        auth_time=float(auth_time) if is_numeric_date(auth_time) else None,
    )


def authenticated_at(claims: UpstreamClaims, now: datetime) -> datetime:
    """Our session's `auth_time` (OIDC Core §2: when the user authenticated): when the provider
    did, which a session there may have made long ago — so a silent sign-in there is no fresh
    sign-in here (docs/federation.md); now when the ID token does not say. Never after now."""
    if claims.auth_time is None:
        return now
    return datetime.fromtimestamp(min(max(claims.auth_time, 0.0), now.timestamp()), UTC)


# --- deciding ----------------------------------------------------------------------------------


def _mapped_groups(store: Store, names: Sequence[str]) -> tuple[str, ...]:
    """The ids of the domain's existing groups whose names equal upstream group names
    (case-insensitive; none are created)."""
    if not names:
        return ()
    wanted = {name.casefold() for name in names}
    return tuple(group.id for group in store.groups.list() if group.name.casefold() in wanted)


def _groups_to_leave(
    store: Store,
    provider: UpstreamProvider,
    user_id: str,
    claims: UpstreamClaims,
    mapped: Sequence[str],
) -> tuple[str, ...]:
    """With `sync_groups` and the whole groups claim: the groups whose membership a sign-in
    through this provider made that the claim (`mapped`) no longer names (an administrator's
    stay). Without the claim nothing ends: a provider that stops sending it (Entra ID sends a
    link instead when a user has too many groups) must not empty the user's groups."""
    if not provider.sync_groups or not claims.groups_complete:
        return ()
    return tuple(g for g in store.groups.made_by_provider(user_id, provider.id) if g not in mapped)


def _free_username(store: Store, provider: UpstreamProvider, claims: UpstreamClaims) -> str | None:
    """The mapped username, or with a suffix derived from the provider and `sub` when taken;
    None when that is taken too."""
    if store.users.get_by_username(claims.username) is None:
        return claims.username
    suffix = "-" + _digest(provider.id, claims.subject)[:6]
    other = claims.username[: MAX_USERNAME - len(suffix)] + suffix
    if valid_username(other) and store.users.get_by_username(other) is None:
        return other
    return None


def _new_user(username: str, claims: UpstreamClaims, now: datetime) -> User:
    return User(
        id=uuid.uuid4().hex,
        username=username,
        # Empty: never verifies (tessera.domain.passwords.verify_password); the user can get a
        # password through password reset (docs/federation.md).
        password_hash="",
        display_name=claims.display_name,
        # Only an address the provider verified: another provider's link by e-mail must never
        # find this account through an address its holder merely typed upstream.
        email=claims.email if claims.email_verified else None,
        email_verified=claims.email_verified,
        is_admin=False,
        created_at=now,
        password_changed_at=now,
    )


def _by_email(
    store: Store, provider: UpstreamProvider, claims: UpstreamClaims
) -> Plan | Refused | None:
    """Step 2: a local account with the same e-mail. None when there is none."""
    if claims.email is None:
        return None
    found = store.users.find_by_email(claims.email)
    if not found:
        return None
    name = provider.display_name
    if not provider.link_existing:
        return Refused(
            f"An account here already uses your e-mail address. Sign in with your password, "
            f"then link {name} on your account page.",
            "a local account has the e-mail and the provider does not link existing accounts",
        )
    if not claims.email_verified:
        return Refused(
            f"{name} has not verified your e-mail address, so it cannot be linked to the account "
            f"here that uses it. Sign in with your password, then link {name} on your account "
            "page.",
            "a local account has the e-mail, but the provider does not say it is verified",
        )
    # Only an address known to reach the local user (docs/federation.md, "Accounts"): anyone
    # can type a colleague's address on their own account page.
    verified = [user for user in found if user.email_verified]
    if not verified:
        return Refused(
            f"The account here that uses your e-mail address has not verified it, so it cannot "
            f"be linked to your {name} account. Sign in with your password, then link {name} "
            "on your account page.",
            "a local account has the e-mail, but its address is not verified here",
        )
    if len(verified) > 1:
        return Refused(
            "More than one account here uses your e-mail address. Ask an administrator.",
            f"{len(verified)} local accounts have the e-mail verified",
        )
    user = verified[0]
    if user.is_admin:
        return Refused(
            f"Administrator accounts are never linked automatically: sign in with your password "
            f"and link {name} on your account page.",
            "the local account with the e-mail is an administrator",
        )
    if not user.active:
        return Refused(_DISABLED, "the local account with the e-mail is disabled")
    return _plan_for("link", store, provider, user, claims)


def _plan_for(
    action: Literal["existing", "link"],
    store: Store,
    provider: UpstreamProvider,
    user: User,
    claims: UpstreamClaims,
) -> Plan:
    """A plan for an account that exists: the mapped groups it is not in yet to join, and
    those `_groups_to_leave` names."""
    mapped = _mapped_groups(store, claims.groups)
    have = {g.id for g in store.groups.groups_of(user.id)} if mapped else set()
    joins = tuple(g for g in mapped if g not in have)
    return Plan(action, user, joins, _groups_to_leave(store, provider, user.id, claims, mapped))


def _linked(
    store: Store, provider: UpstreamProvider, claims: UpstreamClaims
) -> Plan | Refused | None:
    """Step 1: the account the link names; None when there is no link."""
    link = store.federated_identities.get(claims.provider_id, claims.subject)
    if link is None:
        return None
    user = store.users.get(link.user_id)
    if user is None:  # the user was deleted meanwhile (their links go with them)
        return Refused(_DISABLED, "the linked account no longer exists")
    if not user.active:
        return Refused(_DISABLED, "the linked account is disabled")
    return _plan_for("existing", store, provider, user, claims)


def _unlinked(
    store: Store, provider: UpstreamProvider, claims: UpstreamClaims, now: datetime
) -> Plan | Refused:
    """Steps 2-4, for an upstream account without a link."""
    by_email = _by_email(store, provider, claims)
    if by_email is not None:
        return by_email
    if not provider.jit:
        return Refused(
            f"No account here is linked to your {provider.display_name} account. Ask an "
            "administrator.",
            "no linked account, and the provider creates none (jit off)",
        )
    username = _free_username(store, provider, claims)
    if username is None:
        return Refused(
            "An account for you cannot be created here: its username is taken. Ask an "
            "administrator.",
            f"the username {claims.username!r} and its suffixed form are taken",
        )
    return Plan("create", _new_user(username, claims, now), _mapped_groups(store, claims.groups))


def plan_account(
    store: Store, provider: UpstreamProvider, claims: UpstreamClaims, now: datetime
) -> Plan | Refused:
    """Decide, reading only (the test page shows it; `resolve_account` carries it out)."""
    linked = _linked(store, provider, claims)
    if linked is not None:
        return linked
    plan = _unlinked(store, provider, claims, now)
    if isinstance(plan, Refused):
        # A concurrent first sign-in may have created the account (with this e-mail and
        # username) and its link after the link was read: read the link once more.
        return _linked(store, provider, claims) or plan
    return plan


# --- acting ------------------------------------------------------------------------------------


def _identity(claims: UpstreamClaims, user_id: str, now: datetime) -> FederatedIdentity:
    return FederatedIdentity(
        provider_id=claims.provider_id,
        subject=claims.subject,
        user_id=user_id,
        created_at=now,
        email=claims.email,
        last_used_at=now,
    )


def _carry_out(
    store: Store, provider: UpstreamProvider, claims: UpstreamClaims, plan: Plan, now: datetime
) -> Account:
    """Write what `plan` says; `Conflict` or `NotFound` when the store changed meanwhile."""
    if plan.action == "create":
        store.federated_identities.create_user(
            plan.user, _identity(claims, plan.user.id, now), plan.group_ids
        )
        return Account(plan.user, "created", plan.group_ids)
    if plan.action == "existing":
        store.federated_identities.touch(provider.id, claims.subject, claims.email, now)
    else:
        store.federated_identities.link(_identity(claims, plan.user.id, now))
    # Memberships are the provider's to add and, with `sync_groups`, to end (docs/federation.md,
    # "Groups"); an administrator's stay.
    joined, left = (
        store.groups.provider_memberships(
            plan.user.id, provider.id, plan.group_ids, plan.leave_ids, now
        )
        if plan.group_ids or plan.leave_ids
        else ([], [])  # the usual sign-in: no write
    )
    outcome: Literal["signed-in", "linked"] = "signed-in" if plan.action == "existing" else "linked"
    return Account(plan.user, outcome, tuple(joined), tuple(left))


def resolve_account(
    store: Store, provider: UpstreamProvider, claims: UpstreamClaims, now: datetime
) -> Account | Refused:
    """The local account of this upstream sign-in, linking or creating it as `plan_account`
    decides (docs/federation.md, "Accounts"); a `Refused` has written nothing. When the store
    changed between the decision and the write (a concurrent first sign-in linked the account,
    the username was taken, a group or the user was deleted: `Conflict` or `NotFound`, nothing
    written), it decides once more from what is stored now. The caller signs the user in
    (`sign_in_verified(..., ("fed",), ..., upstream_provider=provider.id)`) and audits the
    outcome."""
    for _ in range(2):
        plan = plan_account(store, provider, claims, now)
        if isinstance(plan, Refused):
            return plan
        try:
            return _carry_out(store, provider, claims, plan, now)
        except (Conflict, NotFound):
            continue
    return Refused(
        "This sign-in collided with another change here. Try again.",
        "the store changed twice between the decision and the write",
    )


def link_identity(
    store: Store, provider: UpstreamProvider, claims: UpstreamClaims, user: User, now: datetime
) -> FederatedIdentity | Refused:
    """Link the upstream account to `user`, who is signed in here (the account page's "link",
    docs/federation.md). Refused when it is linked already, to this or another account."""
    if not user.active:
        return Refused(_DISABLED, "the account is disabled")
    existing = store.federated_identities.get(provider.id, claims.subject)
    if existing is not None:
        return _linked_already(provider, existing, user)
    identity = _identity(claims, user.id, now)
    try:
        store.federated_identities.link(identity)
    except Conflict:
        # Linked by a concurrent request (to whom, if it is still there).
        found = store.federated_identities.get(provider.id, claims.subject)
        return _linked_already(provider, found, user)
    except NotFound:
        return Refused("This link cannot be completed. Try again.", "deleted meanwhile")
    return identity


def _linked_already(
    provider: UpstreamProvider, existing: FederatedIdentity | None, user: User
) -> Refused:
    if existing is not None and existing.user_id == user.id:
        return Refused(
            f"Your {provider.display_name} account is linked to this account already.",
            "linked already to this account",
        )
    return Refused(
        f"This {provider.display_name} account is already linked to another account.",
        "the upstream account is linked to another user",
    )
