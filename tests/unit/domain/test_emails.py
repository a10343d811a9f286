"""Addresses and e-mail domains: one rule for users, SCIM, just-in-time accounts and
providers' e-mail domains."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tessera.domain.emails import dns_name, email_domain, is_email, shared_email_domain
from tessera.domain.model import UpstreamProvider


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("ada@corp.example", True),
        ("a.b+tag@mail.corp.example", True),
        ("ada@corp", False),  # no dot in the domain
        ("ada corp@corp.example", False),
        ("ada@corp.example\n", False),
        ("ada@@corp.example", False),
        ("@corp.example", False),
        ("x" * 65 + "@corp.example", False),  # a local part of at most 64
        ("ada@" + "c" * 320 + ".example", False),  # at most 320 in all
        (None, False),
    ],
)
def test_is_email(value: object, expected: bool) -> None:
    assert is_email(value) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Corp.Example", "corp.example"),
        (" corp.example. ", "corp.example"),
        ("bücher.example", "xn--bcher-kva.example"),  # RFC 5890 A-label
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("localhost", None),  # one label
        ("-corp.example", None),
        ("corp_mail.example", None),
        ("corp..example", None),
        ("c" * 64 + ".example", None),  # a label of at most 63
        ("", None),
    ],
)
def test_dns_name(value: str, expected: str | None) -> None:
    assert dns_name(value) == expected


def test_email_domain_is_the_dns_name_after_the_last_at() -> None:
    assert email_domain("a@b@Corp.Example") == "corp.example"
    assert email_domain("ada@Bücher.example") == "xn--bcher-kva.example"
    assert email_domain("ada@") is None and email_domain("corp.example") is None
    assert email_domain("x" * 400 + "@corp.example") is None


def _provider(provider_id: str, *domains: str) -> UpstreamProvider:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    return UpstreamProvider(provider_id, provider_id, provider_id, f"https://{provider_id}.test",
                            "client", "client_secret_basic", now, now, email_domains=domains)


def test_shared_email_domain_names_the_first_shared_and_its_provider() -> None:
    corp, other = _provider("corp", "corp.test", "b.test"), _provider("other", "x.test")
    assert shared_email_domain(_provider("new", "x.test"), [corp, other]) == ("x.test", other)
    assert shared_email_domain(_provider("new", "CORP.test", "B.test"), [corp]) == ("b.test", corp)
    assert shared_email_domain(_provider("new", "new.test"), [corp, other]) is None
    assert shared_email_domain(_provider("new"), [corp]) is None
    # Its own row (an update) is not another provider.
    assert shared_email_domain(_provider("corp", "corp.test"), [corp, other]) is None
