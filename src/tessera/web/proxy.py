"""The client address, with `X-Forwarded-For` believed only from configured proxies.

docs/security.md rule 24: spoofed forwarding headers change neither the issuer (always configured),
nor redirect bases, nor the rate-limit key.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["ClientAddressMiddleware", "client_address", "client_ip"]

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _trusted(address: str, networks: Sequence[_Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_address(
    peer: str | None, forwarded_for: str | None, networks: Sequence[_Network]
) -> str:
    """Walk `X-Forwarded-For` from the right while the hop is a trusted proxy."""
    address = peer or "unknown"
    if not forwarded_for or not _trusted(address, networks):
        return address
    for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
        address = hop
        if not _trusted(hop, networks):
            break
    return address


def client_ip(scope: Scope) -> str | None:
    """The address `ClientAddressMiddleware` found for this request."""
    value = scope.get("state", {}).get("client_ip")
    return value if isinstance(value, str) else None


class ClientAddressMiddleware:
    """Store the client address in `scope["state"]["client_ip"]`."""

    def __init__(self, app: ASGIApp, trusted_proxies: Sequence[str]) -> None:
        self.app = app
        self.networks = [ipaddress.ip_network(p, strict=False) for p in trusted_proxies]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            forwarded = None
            for name, value in scope["headers"]:
                if name == b"x-forwarded-for":
                    forwarded = value.decode("latin-1")
            peer = scope["client"][0] if scope.get("client") else None
            scope.setdefault("state", {})["client_ip"] = client_address(
                peer, forwarded, self.networks
            )
        await self.app(scope, receive, send)
