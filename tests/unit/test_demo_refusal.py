"""The demo domain's passwords are published: it is refused unless the node listens on and is
named by a loopback address, in development (issue 12)."""

from __future__ import annotations

import pytest

from tessera.manage.demo import demo_refusal


@pytest.mark.parametrize(
    ("host", "issuer"),
    [
        ("127.0.0.1", "http://127.0.0.1:8000"),
        ("localhost", "http://localhost:8000"),
        ("::1", "http://[::1]:8000"),
        ("127.0.0.2", "http://127.0.0.1:8000"),
    ],
)
def test_the_demo_is_allowed_on_loopback(host: str, issuer: str) -> None:
    assert demo_refusal(host, issuer, production=False) is None


@pytest.mark.parametrize(
    ("host", "issuer", "says"),
    [
        ("0.0.0.0", "http://127.0.0.1:8000", "--host 0.0.0.0"),  # noqa: S104
        ("::", "http://127.0.0.1:8000", "--host ::"),
        ("192.0.2.10", "http://127.0.0.1:8000", "--host 192.0.2.10"),
        ("127.0.0.1", "https://id.example.com", "issuer https://id.example.com"),
        ("127.0.0.1", "https://localhost.example.com", "issuer"),
    ],
)
def test_the_demo_is_refused_off_loopback(host: str, issuer: str, says: str) -> None:
    refusal = demo_refusal(host, issuer, production=False)
    assert refusal is not None and says in refusal


def test_the_demo_is_refused_in_production() -> None:
    assert demo_refusal("127.0.0.1", "http://127.0.0.1:8000", production=True)
