"""What tests of passkeys share: a server named `localhost` (WebAuthn takes a host name, never
an address, as RP ID), the acr values, and the options our pages carry for
`navigator.credentials`."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.server import Server, free_port, running_server

__all__ = ["ACR_MFA", "ACR_PASSWORD", "ACR_PHR", "localhost_server", "page_options"]

ACR_PASSWORD = "urn:tessera:acr:password"
ACR_MFA = "urn:tessera:acr:mfa"
ACR_PHR = "urn:tessera:acr:phishing-resistant"
_OPTIONS = re.compile(r'<script type="application/json" id="passkey-options">(.*?)</script>', re.S)


@contextmanager
def localhost_server(data_dir: Path) -> Iterator[Server]:
    """`running_server` with the issuer `http://localhost:PORT`."""
    port = free_port()
    with running_server(data_dir, port=port, issuer=f"http://localhost:{port}") as srv:
        yield srv


def page_options(html: str) -> str | None:
    """The passkey options JSON a page carries, if any."""
    found = _OPTIONS.search(html)
    return found.group(1) if found else None
