"""E-mail addresses and the DNS names of their domains: the rule users, SCIM provisioning and
just-in-time accounts share, and the one form in which providers' e-mail domains are stored and
compared for home-realm discovery (docs/federation.md)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tessera.domain.model import UpstreamProvider

__all__ = ["MAX_EMAIL", "dns_name", "email_domain", "is_email", "shared_email_domain"]

MAX_EMAIL = 320  # RFC 3696 §3: 64 for the local part, @, 255 for the domain
_EMAIL = re.compile(r"[^@\s\x00-\x1f\x7f]{1,64}@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]+")
_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


def is_email(value: object) -> bool:
    """Shaped like an address: a local part, one @, a domain with a dot; no spaces or controls
    (the whole string: `re.match` with `$` let a trailing newline through)."""
    if not isinstance(value, str) or len(value) > MAX_EMAIL:
        return False
    return _EMAIL.fullmatch(value) is not None


def dns_name(value: str) -> str | None:
    """`value` as a DNS name of two labels or more, lower case (names compare
    case-insensitively, RFC 4343 §2), an internationalised one in its A-label form (RFC 5890),
    without the root's dot; None when it is not one."""
    try:
        name = value.strip().lower().rstrip(".").encode("idna").decode("ascii")
    except UnicodeError:
        return None
    labels = name.split(".")
    if len(name) > 253 or len(labels) < 2 or not all(_LABEL.fullmatch(x) for x in labels):
        return None
    return name


def email_domain(address: str) -> str | None:
    """The domain of `local@domain` as `dns_name` gives it (the last @ splits); None when
    `address` is not such an address."""
    if not isinstance(address, str) or len(address) > MAX_EMAIL:
        return None
    local, at, domain = address.strip().rpartition("@")
    if not at or not local or any(c.isspace() for c in domain):
        return None
    return dns_name(domain)


def shared_email_domain(
    provider: UpstreamProvider, others: Iterable[UpstreamProvider]
) -> tuple[str, UpstreamProvider] | None:
    """The first of `provider`'s e-mail domains that another of `others` has (compared
    case-insensitively), with that provider; None when they are all its own."""
    mine = {d.lower() for d in provider.email_domains}
    for other in others:
        if other.id != provider.id:
            taken = sorted(mine & {d.lower() for d in other.email_domains})
            if taken:
                return taken[0], other
    return None
