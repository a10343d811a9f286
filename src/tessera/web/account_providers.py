"""The account pages' linked sign-in providers (docs/federation.md): the upstream accounts
linked to the user's, linking another (the round trip of `tessera.web.federation`, purpose
"link") and removing a link, which `tessera.oauth.interaction.account.unlink_refused` refuses
when it would leave no way to sign in. Both need a fresh sign-in, as adding or removing a
passkey does; both are audited and mailed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from tessera.oauth.interaction.account import enabled_providers, unlink_refused
from tessera.oauth.interaction.login import SignedInUser
from tessera.oauth.interaction.requirements import user_factors
from tessera.store.protocols import NotFound
from tessera.web.account import SECURITY_PAGE, security_changed, when
from tessera.web.account_flow import account_actor, done
from tessera.web.browser import provider_targets
from tessera.web.federation import begin_link
from tessera.web.forms import Params
from tessera.web.services import Services

__all__ = ["ProviderPageRender", "link_provider", "linked_values", "unlink_provider"]


# The security page with an error message and a status.
ProviderPageRender = Callable[[Services, Request, SignedInUser, Params, str | None, int], Response]


@dataclass(frozen=True, slots=True)
class _LinkView:
    provider_id: str
    subject: str
    provider: str  # the provider's display name
    email: str | None
    linked: str
    last_used: str
    enabled: bool


@dataclass(frozen=True, slots=True)
class _Linkable:
    name: str
    display_name: str


def linked_values(svc: Services, current: SignedInUser) -> dict[str, Any]:
    """The section's values: the user's links (any provider's, a disabled one's too) and a
    "Link" button per enabled provider not linked yet."""
    store = svc.ctx.store
    providers = {p.id: p for p in store.upstream_providers.list()}
    links = store.federated_identities.list_for_user(current.user.id)
    views = [
        _LinkView(
            provider_id=i.provider_id,
            subject=i.subject,
            provider=providers[i.provider_id].display_name,
            email=i.email,
            linked=when(i.created_at),
            last_used=when(i.last_used_at),
            enabled=providers[i.provider_id].enabled,
        )
        for i in links
        if i.provider_id in providers
    ]
    linked_ids = {i.provider_id for i in links}
    linkable = [p for p in providers.values() if p.enabled and p.id not in linked_ids]
    return {
        "links": views,
        "linkable": [_Linkable(p.name, p.display_name) for p in linkable],
        "has_password": bool(current.user.password_hash),
        "show_providers": bool(views or linkable),
        # The page's CSP: a "Link" form's answer is a redirect to the provider.
        "form_targets": provider_targets(svc, linkable),
    }


def link_provider(
    svc: Services,
    request: Request,
    current: SignedInUser,
    form: Params,
    render: ProviderPageRender,
) -> Response:
    store = svc.ctx.store
    provider = store.upstream_providers.get_by_name(form.get("provider", "")[:64])
    if provider is None or not provider.enabled:
        message = "This sign-in provider is not available."
        return render(svc, request, current, Params([]), message, 404)
    linked = store.federated_identities.list_for_user(current.user.id)
    if any(i.provider_id == provider.id for i in linked):
        message = f"Your account is linked to {provider.display_name} already."
        return render(svc, request, current, Params([]), message, 409)
    return begin_link(svc, request, provider, current.user.id)


def unlink_provider(
    svc: Services,
    request: Request,
    current: SignedInUser,
    form: Params,
    render: ProviderPageRender,
) -> Response:
    store = svc.ctx.store
    provider_id, subject = form.get("provider_id", ""), form.get("subject", "")
    links = store.federated_identities.list_for_user(current.user.id)
    passkeys = len(user_factors(store.factors, current.user.id).passkeys)
    enabled = enabled_providers(store.upstream_providers)
    refusal = unlink_refused(
        current.user, links, provider_id, subject, passkeys=passkeys, enabled=enabled
    )
    actor = account_actor(svc, request, current)
    if refusal is not None:
        actor.audit("account.provider_unlink_refused", user_id=current.user.id, reason=refusal)
        return render(svc, request, current, Params([]), refusal, 400)
    provider = store.upstream_providers.get(provider_id)
    name = provider.display_name if provider is not None else "sign-in provider"
    try:
        store.federated_identities.unlink(provider_id, subject)
    except NotFound:  # removed meanwhile (another tab): what was asked is done
        return done(svc, SECURITY_PAGE, "provider-unlinked")
    return security_changed(
        svc,
        request,
        current,
        "account.provider_unlinked",
        f"your {name} account was unlinked",
        "provider-unlinked",
        provider=provider.name if provider is not None else provider_id,
    )
