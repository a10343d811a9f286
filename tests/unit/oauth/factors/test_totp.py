"""TOTP (RFC 6238): the RFC's own test vectors, the ±1 step window, replay, bad input, the
provisioning URI a phone app reads, and the QR code of it."""

from __future__ import annotations

import base64
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
import segno

from tessera.oauth.factors import totp

# RFC 6238 Appendix B: the SHA1 seed "12345678901234567890"; 6-digit codes are the last 6
# digits of the 8-digit ones listed there.
RFC_SECRET = base64.b32encode(b"12345678901234567890").decode()
RFC_VECTORS = [
    (59, "287082"),
    (1111111109, "081804"),
    (1111111111, "050471"),
    (1234567890, "005924"),
    (2000000000, "279037"),
]
NOW = datetime(2026, 12, 6, 12, 0, 10, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def code_at(secret: str, when: datetime) -> str:
    return pyotp.TOTP(secret).at(when)


def test_new_secret_is_160_bits_of_base32_and_random() -> None:
    secrets_ = {totp.new_secret() for _ in range(20)}
    assert len(secrets_) == 20
    for secret in secrets_:
        assert re.fullmatch(r"[A-Z2-7]{32}", secret)
        assert len(base64.b32decode(secret)) == 20


@pytest.mark.parametrize(("unix", "code"), RFC_VECTORS)
def test_rfc_6238_vectors_match_at_their_step(unix: int, code: str) -> None:
    assert totp.step_at(at(unix)) == unix // 30
    assert totp.matching_step(RFC_SECRET, code, at(unix), last_step=0) == unix // 30


def test_step_at_is_floor_of_unix_time_over_30() -> None:
    assert totp.step_at(at(0)) == 0
    assert totp.step_at(at(29.9)) == 0
    assert totp.step_at(at(30)) == 1
    assert totp.step_at(at(59)) == 1


@pytest.mark.parametrize("drift", [-1, 0, 1])
def test_one_step_of_drift_either_way_is_accepted(drift: int) -> None:
    secret = totp.new_secret()
    code = code_at(secret, NOW + timedelta(seconds=30 * drift))
    assert totp.matching_step(secret, code, NOW, last_step=0) == totp.step_at(NOW) + drift


@pytest.mark.parametrize("drift", [-3, -2, 2, 3])
def test_two_steps_away_is_refused(drift: int) -> None:
    secret = totp.new_secret()
    code = code_at(secret, NOW + timedelta(seconds=30 * drift))
    # Skip the one-in-a-million case where the far code equals one inside the window.
    window = {code_at(secret, NOW + timedelta(seconds=30 * d)) for d in (-1, 0, 1)}
    if code not in window:
        assert totp.matching_step(secret, code, NOW, last_step=0) is None


def test_a_code_is_accepted_once() -> None:
    secret = totp.new_secret()
    code = code_at(secret, NOW)
    step = totp.matching_step(secret, code, NOW, last_step=0)
    assert step == totp.step_at(NOW)
    # Replayed within the window, at once or in the next step: its step is not above the last.
    assert totp.matching_step(secret, code, NOW, last_step=step) is None
    assert totp.matching_step(secret, code, NOW + timedelta(seconds=30), last_step=step) is None
    assert totp.matching_step(secret, code, NOW, last_step=step + 5) is None


def test_an_older_code_is_refused_after_a_newer_one_was_used() -> None:
    secret = totp.new_secret()
    current = totp.step_at(NOW)
    previous = code_at(secret, NOW - timedelta(seconds=30))
    if previous != code_at(secret, NOW) and previous != code_at(secret, NOW + timedelta(30)):
        assert totp.matching_step(secret, previous, NOW, last_step=current) is None
        assert totp.matching_step(secret, previous, NOW, last_step=current - 2) == current - 1


def test_spaces_are_ignored() -> None:
    assert totp.matching_step(RFC_SECRET, " 287 082 ", at(59), last_step=0) == 1
    assert totp.matching_step(RFC_SECRET, "287\t082", at(59), last_step=0) == 1


@pytest.mark.parametrize(
    "code",
    [
        "",
        "28708",
        "2870820",
        "28708a",
        "287-082",
        "+87082",
        "٢٨٧٠٨٢",  # Arabic-Indic digits: `int()` would read them as 287082
        "２８７０８２",  # full-width digits
        "287082" + " " * 100,  # too long to be a typed code
        "1" * 100_000,
    ],
)
def test_anything_but_six_ascii_digits_is_refused_without_raising(code: str) -> None:
    assert totp.matching_step(RFC_SECRET, code, at(59), last_step=0) is None


def test_provisioning_uri_is_what_phone_apps_read() -> None:
    secret = totp.new_secret()
    uri = totp.provisioning_uri(secret, "alice@example.com", "Tessera Acme")
    assert uri.startswith("otpauth://totp/Tessera%20Acme:alice%40example.com?")
    parsed = pyotp.parse_uri(uri)
    assert isinstance(parsed, pyotp.TOTP)
    assert (parsed.secret, parsed.name, parsed.issuer) == (secret, "alice@example.com", "Tessera Acme")
    assert (parsed.digits, parsed.interval, parsed.digest().name) == (6, 30, "sha1")
    assert parsed.at(NOW) == code_at(secret, NOW)


def _modules(svg: str) -> set[tuple[int, int]]:
    """The dark modules drawn by segno's path (`M x y`, `m dx dy`, `h n`, rows at y + 0.5)."""
    [path] = [p for p in ET.fromstring(svg).iter("path") if p.get("class") == "qrline"]
    dark: set[tuple[int, int]] = set()
    x = y = 0.0
    for op, a, b in re.findall(r"([Mmh])(-?[\d.]+)(?: (-?[\d.]+))?", path.attrib["d"]):
        if op == "M":
            x, y = float(a), float(b)
        elif op == "m":
            x, y = x + float(a), y + float(b)
        else:
            dark.update((int(x) + i, int(y)) for i in range(int(float(a))))
            x += float(a)
    return dark


def test_qr_svg_is_inline_labelled_and_encodes_the_uri() -> None:
    uri = totp.provisioning_uri(totp.new_secret(), "alice", "Tessera")
    svg = totp.qr_svg(uri)
    assert svg.startswith("<svg ") and "<?xml" not in svg
    assert "href" not in svg and "http" not in svg  # nothing loaded from anywhere
    assert 'fill="#fff"' in svg  # a light background: scannable on a dark page
    root = ET.fromstring(svg)
    assert root.attrib["role"] == "img"
    assert root.attrib["aria-label"] == root.findtext("title") != ""
    expected = segno.make(uri, error="m", micro=False)
    matrix = {(x + 4, y + 4) for y, row in enumerate(expected.matrix) for x, v in enumerate(row) if v}
    assert _modules(svg) == matrix
    other = segno.make(uri.replace("alice", "bob"), error="m", micro=False)
    assert _modules(svg) != {(x + 4, y + 4) for y, row in enumerate(other.matrix) for x, v in enumerate(row) if v}


def test_qr_svg_escapes_its_title() -> None:
    svg = totp.qr_svg("otpauth://totp/x?secret=AAAA", title='<script>"x"</script>')
    assert "<script>" not in svg
    root = ET.fromstring(svg)
    assert root.attrib["aria-label"] == '<script>"x"</script>' == root.findtext("title")
