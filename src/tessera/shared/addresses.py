"""Which IP addresses are globally routable: the guard against server-side request forgery
when the server connects somewhere a user named (integrations' backends, apps' `jwks_uri`).

Loopback, link-local (cloud metadata 169.254.169.254, fd00:ec2::254), private (RFC 1918, CGNAT
100.64/10 RFC 6598), unique local (fc00::/7, RFC 4193), unspecified, multicast and reserved
addresses are refused, also when embedded in IPv6 (IPv4-mapped and -compatible RFC 4291
§2.5.5, 6to4 RFC 3056, Teredo RFC 4380, NAT64 RFC 6052/8215). `literal_address` also reads the
forms `inet_aton` accepts (`2130706433`, `0x7f.1`, `017700000001`, `127.1`).
"""

from __future__ import annotations

import ipaddress
import re
import socket

__all__ = ["Address", "literal_address", "refusal"]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

_INET_ATON = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}$", re.IGNORECASE)
_NAT64 = (
    ipaddress.IPv6Network("64:ff9b::/96"),  # RFC 6052 well-known prefix
    ipaddress.IPv6Network("64:ff9b:1::/48"),  # RFC 8215 local-use prefix
)
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # RFC 4291 §2.5.5.1 (deprecated)
_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")  # RFC 6598


def literal_address(host: str) -> Address | None:
    """The address a URL host names literally (brackets, zone and `inet_aton` forms read)."""
    bare = host.strip("[]").split("%", 1)[0]
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        pass
    if _INET_ATON.match(bare):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(bare))
        except OSError:
            return None
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, compatible, 6to4, Teredo, NAT64)."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if any(address in net for net in _NAT64) or (address in _IPV4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def refusal(address: Address) -> str | None:
    """Why the default policy refuses the address, or None for a global unicast address."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded_ipv4(address)
        if inner is not None:
            reason = refusal(inner)
            return None if reason is None else f"{reason} (embedded in IPv6)"
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("shared (CGNAT)", isinstance(address, ipaddress.IPv4Address) and address in _CGNAT),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
        ("not globally routable", not address.is_global),
    )
    return next((name for name, hit in checks if hit), None)
