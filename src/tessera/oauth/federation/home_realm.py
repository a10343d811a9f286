"""Home-realm discovery (docs/federation.md, "The round trip" step 1): a person who signs in
with an e-mail address whose domain an enabled provider claims (`email_domains`) is sent
straight to that provider, no password asked. The same applies to an authorization request's
`login_hint` (OIDC Core §3.1.2.1) when it is such an address."""

from __future__ import annotations

from collections.abc import Iterable

from tessera.domain.emails import email_domain
from tessera.domain.model import UpstreamProvider

__all__ = ["provider_for_email"]


def provider_for_email(
    providers: Iterable[UpstreamProvider], email: str
) -> UpstreamProvider | None:
    """The enabled provider whose `email_domains` has the address's domain exactly (no
    subdomains: `corp.example` does not claim `eu.corp.example`; an internationalised domain
    compared in its stored A-label form); None if none does."""
    domain = email_domain(email)
    if domain is None:
        return None
    for provider in providers:
        if provider.enabled and domain in (d.lower() for d in provider.email_domains):
            return provider
    return None
