"""Home-realm discovery (docs/federation.md): an e-mail address whose domain an upstream
provider claims (its `email_domains`) signs in at that provider, without a password asked here.
"""

from __future__ import annotations

from collections.abc import Iterable

from tessera.domain.model import UpstreamProvider

__all__ = ["provider_for_email"]

_MAX_EMAIL = 254  # RFC 5321 §4.5.3.1.3: the longest path an address can take


def provider_for_email(
    providers: Iterable[UpstreamProvider], email: str
) -> UpstreamProvider | None:
    """The enabled provider one of whose `email_domains` is the domain of `email` (compared
    case-insensitively, whole domain only: `corp.example` does not claim `evil-corp.example`
    nor `mail.corp.example`); None when `email` is not an address or no provider claims it."""
    text = email.strip()
    if len(text) > _MAX_EMAIL:
        return None
    local, at, domain = text.rpartition("@")
    domain = domain.lower().rstrip(".")
    if not at or not local or not domain:
        return None
    return next((p for p in providers if p.enabled and domain in p.email_domains), None)
