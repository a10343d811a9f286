"""The egress policy of `invoke` steps: which addresses the service may connect to.

An integration document names any URL, and the service calls it with its own network position
and the integration's credentials (server-side request forgery, OWASP SSRF). By default only
globally routable unicast addresses are reachable: loopback, link-local (cloud metadata
169.254.169.254, fd00:ec2::254), private (RFC 1918, CGNAT 100.64/10 RFC 6598), unique local
(fc00::/7, RFC 4193), unspecified, multicast and reserved addresses are refused, also when
embedded in IPv6 (IPv4-mapped and -compatible RFC 4291 §2.5.5, 6to4 RFC 3056, Teredo RFC 4380,
NAT64 RFC 6052/8215).

The real check is at connect time, on the resolved address (`GuardedBackend`): the name is
resolved once, every address it resolves to is checked, and the connection goes to a checked
address, so a name that resolves to a private address (DNS rebinding included) is refused. The
Host header and TLS SNI still carry the URL's host. A deploy is checked early too when a URL
names a literal address (`literal_address` also reads the forms `inet_aton` accepts:
`2130706433`, `0x7f.1`, `017700000001`, `127.1`).

`TESSERA_INTEGRATION_EGRESS_ALLOW` lists what a deployment wants reachable besides: CIDRs
(`10.20.0.0/16`, `::1/128`) and hosts with an optional port (`backend.internal`,
`127.0.0.1:9000`, `[::1]:9000`), separated by commas or spaces.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpcore
import httpx

from tessera.shared.addresses import Address, literal_address, refusal

__all__ = [
    "EgressError",
    "EgressPolicy",
    "EgressRefused",
    "GuardedBackend",
    "guarded_transport",
    "literal_address",
    "parse_allow",
]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]


class EgressError(ValueError):
    """A malformed `TESSERA_INTEGRATION_EGRESS_ALLOW` entry."""


class EgressRefused(httpcore.ConnectError):
    """The policy refuses the address; an httpcore error so httpx reports a `ConnectError`."""


@dataclass(frozen=True, slots=True)
class _HostPort:
    host: str  # lower case; a literal address in its compressed form
    port: int | None


@dataclass(frozen=True, slots=True)
class EgressPolicy:
    """Global unicast addresses, and whatever the allow-list adds."""

    networks: tuple[Network, ...] = ()
    hosts: tuple[_HostPort, ...] = ()

    def refusal(self, host: str, port: int, address: Address) -> str | None:
        """Why connecting to `address` for the URL host `host` is refused, else None."""
        reason = refusal(address)
        if reason is None:
            return None
        if any(address in net for net in self.networks):
            return None
        for name in (_normal_host(host), str(address)):
            if any(h.host == name and h.port in (None, port) for h in self.hosts):
                return None
        return f"{address} is {reason}"

    def check_url(self, url: str) -> str | None:
        """At deploy time: why a URL whose host is a literal address is refused, else None."""
        try:
            parts = httpx.URL(re.sub(r"\{[^}]*\}", "x", url))  # placeholders: path and query only
        except httpx.InvalidURL:
            return "the URL cannot be parsed"
        address = literal_address(parts.host)
        if address is None:
            return None  # a name: checked when connecting, on what it resolves to then
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return self.refusal(parts.host, port, address)


def _normal_host(host: str) -> str:
    address = literal_address(host)
    return str(address) if address is not None else host.lower().rstrip(".")


def parse_allow(value: str) -> EgressPolicy:
    """Read `TESSERA_INTEGRATION_EGRESS_ALLOW`; raise `EgressError` naming a bad entry."""
    networks: list[Network] = []
    hosts: list[_HostPort] = []
    for entry in re.split(r"[,\s]+", value.strip()):
        if not entry:
            continue
        if "/" in entry:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                raise EgressError(f"{entry!r} is not a CIDR such as 10.0.0.0/8") from None
            continue
        hosts.append(_host_port(entry))
    return EgressPolicy(tuple(networks), tuple(hosts))


def _host_port(entry: str) -> _HostPort:
    try:
        parts = urlsplit(f"//{entry}")
        host, port = parts.hostname, parts.port
    except ValueError:
        raise EgressError(f"{entry!r} is not a host or host:port") from None
    if not host or parts.path or parts.query or parts.fragment or "@" in parts.netloc:
        raise EgressError(f"{entry!r} is not a host or host:port")
    return _HostPort(_normal_host(host), port)


async def _resolve(host: str, port: int) -> list[str]:
    found = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in found]


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, connecting only to addresses the policy allows."""

    def __init__(
        self,
        policy: EgressPolicy,
        resolve: Resolver = _resolve,
        backend: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.policy = policy
        self._resolve = resolve
        self._backend = backend or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        literal = literal_address(host)
        if literal is not None:
            addresses: list[Address] = [literal]
        else:
            try:
                with anyio.fail_after(timeout):
                    resolved = await self._resolve(host, port)
            except (OSError, TimeoutError):
                raise httpcore.ConnectError(f"cannot resolve {host}") from None
            addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in resolved]
        if not addresses:
            raise httpcore.ConnectError(f"{host} resolves to no address")
        for address in addresses:  # every one: a rebinding name may mix public and private
            reason = self.policy.refusal(host, port, address)
            if reason is not None:
                raise EgressRefused(f"the egress policy refuses {host}: {reason}")
        return await self._backend.connect_tcp(
            str(addresses[0]),
            port,
            timeout=timeout,
            local_address=local_address,
            socket_options=socket_options,
        )

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise EgressRefused("the egress policy refuses Unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


def guarded_transport(
    policy: EgressPolicy, resolve: Resolver = _resolve
) -> httpx.AsyncHTTPTransport:
    """An httpx transport whose every connection passes `GuardedBackend` (no proxy from the
    environment: a proxy would connect on our behalf, past the check)."""
    transport = httpx.AsyncHTTPTransport(trust_env=False)
    # httpx takes no network backend: replace its pool by one built with ours.
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(trust_env=False),
        max_connections=100,  # httpx's default limits
        max_keepalive_connections=20,
        keepalive_expiry=5.0,
        network_backend=GuardedBackend(policy, resolve),
    )
    return transport
