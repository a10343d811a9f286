"""Sign-in throttling with progressive delays, never a lockout (RFC 6585 §4: 429 and
Retry-After; NIST SP 800-63B §5.2.2 rate limiting; OWASP ASVS 4.0 V2.2.1).

Failed sign-ins are counted over a window per account and client address, per account and per
client address. Past a number of free failures on a key, each further failure doubles the wait
before the next attempt on it, up to the window. An attempt during a wait is refused without
checking the password, so online guessing stays bounded, and every wait ends, so nobody is
locked out for good.

A browser that signed in to the account before (a known device, `known_device`) is counted on a
key of its own instead of the account-wide and account+address keys: failures made elsewhere
cannot keep the owner out.

IPv6 clients are grouped by /64, the usual allocation to one subscriber: otherwise an attacker
with one network gets 2^64 fresh addresses.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from tessera.store.protocols import Failures

__all__ = [
    "ThrottleKeys",
    "ThrottlePolicy",
    "Verdict",
    "address_group",
    "decide",
    "throttle_keys",
]

Reason = Literal["address", "account"]


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    window_seconds: int  # failures older than this are forgotten; also the longest wait
    free_per_pair: int  # per account+address, and per known device
    free_per_account: int
    free_per_address: int
    first_delay_seconds: int  # the wait after the last free failure; doubles after each next

    @property
    def window(self) -> timedelta:
        return timedelta(seconds=self.window_seconds)

    def delay(self, failures: int, free: int) -> int:
        """Seconds to wait after the latest of `failures` failures on a key allowing `free`."""
        if failures < free:
            return 0
        doublings = min(failures - free, 32)  # 2^32 s exceeds every window
        return min(self.window_seconds, self.first_delay_seconds << doublings)


@dataclass(frozen=True, slots=True)
class ThrottleKeys:
    """The throttle keys of one sign-in attempt."""

    address: str
    pair: str | None  # account+address: None without a username
    account: str | None
    device: str | None  # a known device of this account

    def checked(self) -> list[str]:
        """The keys that decide: a known device stands in for the account-wide keys."""
        if self.device:
            return [self.address, self.device]
        return [k for k in (self.address, self.pair, self.account) if k]

    def recorded(self) -> list[str]:
        """The keys a failure counts on: every one, so the account's count stays complete."""
        return [k for k in (self.address, self.pair, self.account, self.device) if k]

    @property
    def own(self) -> str | None:
        """The key of this browser at this account, forgotten after a successful sign-in."""
        return self.device or self.pair


@dataclass(frozen=True, slots=True)
class Verdict:
    retry_after: int  # seconds to wait; 0: go on and check the password
    reason: Reason | None
    own_failures: int  # failures on `ThrottleKeys.own`: a sign-in clears them (if any)

    @property
    def allowed(self) -> bool:
        return self.retry_after == 0


def address_group(ip: str) -> str:
    """The address a client is counted under: IPv4 whole, IPv6 by its /64 (an IPv4-mapped
    IPv6 address as its IPv4 address); anything unparsable as it is, cut to fit a key."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip[:64]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def throttle_keys(username: str, ip: str, device_id: str | None = None) -> ThrottleKeys:
    """`device_id`: the known-device cookie's device, only when it is valid for this account."""
    name = username.strip().lower()
    group = address_group(ip)
    return ThrottleKeys(
        address=f"ip:{group}",
        pair=f"pair:{name}|{group}" if name else None,
        account=f"acct:{name}" if name else None,
        device=f"dev:{device_id}" if name and device_id else None,
    )


def decide(
    keys: ThrottleKeys, recent: Mapping[str, Failures], now: datetime, policy: ThrottlePolicy
) -> Verdict:
    """Whether to check the password now, from the failures of `keys.checked()` in the window."""
    free = {
        keys.address: policy.free_per_address,
        keys.pair: policy.free_per_pair,
        keys.account: policy.free_per_account,
        keys.device: policy.free_per_pair,
    }
    wait = 0.0
    reason: Reason | None = None
    for key in keys.checked():
        failures = recent.get(key, Failures(0, None))
        if failures.last is None:
            continue
        left = (failures.last - now).total_seconds() + policy.delay(failures.count, free[key])
        if left > wait:
            wait = left
            reason = "address" if key == keys.address else "account"
    own = recent.get(keys.own, Failures(0, None)).count if keys.own else 0
    return Verdict(math.ceil(wait), reason if wait > 0 else None, own)
