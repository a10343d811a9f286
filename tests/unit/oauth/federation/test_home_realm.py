"""Home-realm discovery (docs/federation.md): an enabled provider claims whole e-mail domains."""

from __future__ import annotations

import pytest

from tessera.domain.emails import email_domain
from tessera.oauth.federation.home_realm import provider_for_email
from tests.unit.oauth.federation.conftest import make_provider

CORP = make_provider(email_domains=("corp.example", "Corp-Mail.example"))
# As stored: `tessera.manage.providers` keeps an internationalised domain in its A-label form.
IDN = make_provider(id="up_idn", name="idn", email_domains=("xn--bcher-kva.example",))
OLD = make_provider(id="up_old", name="old", email_domains=("old.example",), enabled=False)


@pytest.mark.parametrize(
    ("email", "expected"),
    [
        ("ada@corp.example", "corp"),
        ("Ada@CORP.Example", "corp"),
        (" ada@corp-mail.example ", "corp"),  # the stored domain is compared lower-case too
        ("ada@corp.example.", "corp"),
        ("ada@mail.corp.example", None),  # no subdomains
        ("ada@evilcorp.example", None),
        ("ada@corp.example.evil.example", None),
        ("ada@old.example", None),  # a disabled provider sends nobody
        ("corp.example", None),
        ("@corp.example", None),
        ("ada@", None),
        ("", None),
        ("ada@corp .example", None),
        ("ada@bücher.example", "idn"),  # typed in Unicode: found by its A-label form
        ("ada@BÜCHER.example", "idn"),
        ("ada@xn--bcher-kva.example", "idn"),
        ("ada@bucher.example", None),
    ],
)
def test_provider_for_email(email: str, expected: str | None) -> None:
    found = provider_for_email([OLD, CORP, IDN], email)
    assert (found.name if found else None) == expected


def test_email_domain() -> None:
    assert email_domain("a@b@Corp.Example") == "corp.example"  # the last @ splits
    assert email_domain("x" * 400 + "@corp.example") is None
