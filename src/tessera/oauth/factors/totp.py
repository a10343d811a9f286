"""Authenticator apps: TOTP, RFC 6238 (HOTP, RFC 4226, over 30-second time steps).

The parameters are the ones every phone app accepts: HMAC-SHA1, 6 digits, 30 s, a 160-bit
secret (RFC 4226 §4 R6). The dynamic truncation (RFC 4226 §5.4) is `pyotp`'s. A code is checked
at the current step and one step either side (RFC 6238 §5.2: one step of clock drift), and
accepted only for a step later than the last accepted one, so a code works once (§5.2: "the
verifier MUST NOT accept the second attempt of the same OTP").
"""

from __future__ import annotations

import hmac
import html
import re
from datetime import datetime

import pyotp
import segno

__all__ = [
    "DIGITS",
    "STEP_SECONDS",
    "matching_step",
    "new_secret",
    "provisioning_uri",
    "qr_svg",
    "step_at",
]

STEP_SECONDS = 30  # X, the time step (RFC 6238 §4.1)
DIGITS = 6
_DRIFT_STEPS = 1  # RFC 6238 §5.2
_CODE = re.compile(r"[0-9]{6}")  # ASCII digits only: `\d` would admit other scripts' digits
_MAX_INPUT = 64  # a code with spaces; anything longer is not one (bounded work)


def new_secret() -> str:
    """A random base32 secret of 160 bits (32 characters, no padding), from `secrets`."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, account_name: str, issuer_label: str) -> str:
    """The `otpauth://totp/Issuer:account?secret=…&issuer=Issuer` URI (the Key Uri Format
    phone apps read from a QR code); SHA1, 6 digits and 30 s are the defaults it leaves out."""
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    return totp.provisioning_uri(name=account_name, issuer_name=issuer_label or None)


def qr_svg(uri: str, title: str = "QR code for your authenticator app") -> str:
    """`uri` as a QR code: an inline `<svg>` element for an HTML page (no XML declaration, no
    namespace, nothing loaded from elsewhere), with a title and an ARIA label. Dark modules on
    a white square with the 4-module quiet zone, so it scans on dark pages too."""
    qr = segno.make(uri, error="m", micro=False)
    svg = qr.svg_inline(scale=4, border=4, dark="#000", light="#fff", title=title, svgclass="qr")
    label = html.escape(title, quote=True)
    return svg.replace("<svg ", f'<svg role="img" aria-label="{label}" ', 1)


def step_at(now: datetime) -> int:
    """T = floor((unix time - T0) / X), T0 = 0 (RFC 6238 §4.2)."""
    return int(now.timestamp()) // STEP_SECONDS


def matching_step(secret: str, code: str, now: datetime, last_step: int) -> int | None:
    """The time step whose code `code` is, among the steps at `now` and one either side, and
    only if it is later than `last_step` (the last one accepted); None otherwise.

    Spaces are ignored; anything but exactly six ASCII digits is refused without raising. All
    candidate steps are compared, in constant time, whatever matches; of several matching
    steps the latest is returned, so the same digits are never accepted twice.
    """
    if len(code) > _MAX_INPUT:
        return None
    candidate = "".join(code.split())
    if not _CODE.fullmatch(candidate):
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    current = step_at(now)
    found: int | None = None
    for step in range(current - _DRIFT_STEPS, current + _DRIFT_STEPS + 1):
        expected = totp.generate_otp(step).encode("ascii")
        if hmac.compare_digest(expected, candidate.encode("ascii")) and step > last_step:
            found = step
    return found
