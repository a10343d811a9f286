"""The client credentials grant: RFC 6749 §4.4, with RFC 8707 `resource` and Oracle's scope form
(docs/architecture.md, "Decisions": scopes). The token is the app's own (`sub_type: client`,
docs/security.md rule 22), for the scopes of ONE resource the app may ask for.

It reads no table: apps and resources come from the node's caches, so a cached request is
answered on the event loop (`tessera.web.token_endpoints`).
"""

from __future__ import annotations

from collections.abc import Callable

from tessera.domain.model import Client, Resource
from tessera.domain.scopes import (
    OIDC_SCOPES,
    ResolvedScope,
    UnknownScope,
    normalize_audience,
    parse_scope_param,
    resolve_scope,
)
from tessera.oauth import errors
from tessera.oauth.grants.request import TokenRequest
from tessera.oauth.grants.response import TokenMinter, TokenResponse

__all__ = ["ClientCredentialsGrant", "resources_for"]


def resources_for(client: Client, resources: list[Resource]) -> list[Resource]:
    """The resources the app has a scope of."""
    audiences = {s for s in client.allowed_scopes if s not in OIDC_SCOPES}
    found: dict[str, Resource] = {}
    for resource in resources:
        if any(s.startswith(resource.audience) for s in audiences):
            found[resource.id] = resource
    return list(found.values())


class ClientCredentialsGrant:
    def __init__(
        self,
        minter: TokenMinter,
        list_resources: Callable[[], list[Resource]],
        admin_scopes: frozenset[str],
    ) -> None:
        self._minter = minter
        self._list_resources = list_resources
        self._admin_scopes = admin_scopes

    def handle(self, request: TokenRequest) -> TokenResponse:
        client, form = request.client, request.form
        if client.is_public:
            raise errors.UnauthorizedClient("a public app cannot use client_credentials")
        try:
            tokens = parse_scope_param(form.get("scope"))
        except ValueError as exc:
            raise errors.InvalidScope(str(exc)) from None
        resources = resources_for(client, self._list_resources())
        resource_param = form.get("resource")
        if resource_param is not None:  # RFC 8707 §2
            wanted = normalize_audience(resource_param)
            resources = [r for r in resources if normalize_audience(r.audience) == wanted]
            if not resources:
                raise errors.InvalidTarget("resource is not an audience this app may ask for")
        if "scope" in form and not tokens:
            raise errors.InvalidScope("scope is empty")
        resolved = self._resolve(client, tokens, resources, resource_param)
        scopes = tuple(dict.fromkeys(r.canonical for r in resolved))
        if not self._admin_scopes.isdisjoint(scopes):
            raise errors.InvalidScope("the admin scope needs an administrator, not an app")
        if not scopes or not set(scopes) <= set(client.allowed_scopes):
            raise errors.InvalidScope("the app may not ask for this scope")
        audiences = {r.audience for r in resolved}
        if len(audiences) != 1:
            raise errors.InvalidTarget("ask for the scopes of one resource at a time")
        audience = audiences.pop()
        assert audience is not None  # OpenID scopes were refused in `_resolve`
        return self._minter.for_client(request, audience, scopes)

    @staticmethod
    def _resolve(
        client: Client,
        tokens: list[str],
        resources: list[Resource],
        resource_param: str | None,
    ) -> list[ResolvedScope]:
        """The scopes asked for, or without `scope` everything the app may ask for of its
        (single) resource; OpenID scopes need a user."""
        try:
            if tokens:
                resolved = [resolve_scope(t, resources, resource_param) for t in tokens]
            else:
                resolved = [
                    resolve_scope(s, resources)
                    for s in client.allowed_scopes
                    if s not in OIDC_SCOPES and any(s.startswith(r.audience) for r in resources)
                ]
        except UnknownScope:
            raise errors.InvalidScope("unknown scope") from None
        if any(r.audience is None for r in resolved):
            raise errors.InvalidScope("OpenID scopes need a user; use the authorization code flow")
        return resolved
