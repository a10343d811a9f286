"""The seed's "Identity Domain Administrators can revoke access tokens for users", end to end:
an administrator revokes a user; the same token is refused at once by introspection and within
1 s by a running integration service that validates JWTs locally, while another user's token
keeps working; after restarts the token stays refused (docs/security.md rule 25)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tessera.shared.integration_roles import SERVICE_VIEWER
from tests.support.admin import console_token
from tests.support.flow import Browser, code_from
from tests.support.integration import Service, grant_roles, start_service
from tests.support.server import Server, start_server

ADMIN_PASSWORD = "Tessera-Demo-Root-2026"


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Server]]:
    holder = [start_server(Path(tmp_path_factory.mktemp("idp")))]
    try:
        yield holder  # a list, so that a test can replace it with the restarted server
    finally:
        holder[0].stop()


def _user_token(server: Server, username: str, password: str) -> str:
    demo = server.demo
    app = demo["confidential_app"]
    browser = Browser(server.base_url)
    response = browser.sign_in_and_authorize(
        username, password, response_type="code", client_id=app["client_id"],
        redirect_uri=app["redirect_uri"], scope=demo["resource"]["scope"], state="s")
    browser.close()
    tokens = httpx.post(f"{server.base_url}/oauth2/v1/token",
                        auth=(app["client_id"], app["client_secret"]),
                        data={"grant_type": "authorization_code", "code": code_from(response),
                              "redirect_uri": app["redirect_uri"]})
    assert tokens.status_code == 200, tokens.text
    return str(tokens.json()["access_token"])


def _active(server: Server, token: str) -> bool:
    app = server.demo["confidential_app"]
    body = httpx.post(f"{server.base_url}/oauth2/v1/introspect",
                      auth=(app["client_id"], app["client_secret"]), data={"token": token})
    return bool(body.json()["active"])


def _calls(service: Service, token: str) -> int:
    return httpx.get(service.url("/integrations"),
                     headers={"Authorization": f"Bearer {token}"}).status_code


def test_an_administrator_revokes_a_user_everywhere(idp: list[Server], tmp_path: Path) -> None:
    server = idp[0]
    server.cli("admin", "users", "create", "bob", "--password-stdin",
               input="Green-Meadow-Kite-2026\n")
    grant_roles(server, "user", "bob", SERVICE_VIEWER)  # reading integrations needs a role
    service = start_service(server, tmp_path)
    try:
        alice = _user_token(server, "alice", "Wonderland-Demo-2026")
        bob = _user_token(server, "bob", "Green-Meadow-Kite-2026")
        assert _calls(service, alice) == 200 and _calls(service, bob) == 200
        admin = console_token(server.base_url, "admin", ADMIN_PASSWORD)["access_token"]
        alice_sub = server.demo["user"]["sub"]

        started = time.monotonic()
        revoked = httpx.post(f"{server.base_url}/admin/v1/users/{alice_sub}/revoke-tokens",
                             headers={"Authorization": f"Bearer {admin}"})
        assert revoked.status_code == 200, revoked.text
        assert _active(server, alice) is False  # at once, at the identity domain
        refused_after = None
        while time.monotonic() - started < 5:
            if _calls(service, alice) == 401:
                refused_after = time.monotonic() - started
                break
            time.sleep(0.02)
        assert refused_after is not None, "the integration service kept accepting the token"
        assert refused_after < 1.0, f"refused only after {refused_after:.3f} s"
        assert _calls(service, bob) == 200  # another user's token keeps working
        assert _active(server, bob) is True
    finally:
        service.proc.terminate()
        service.proc.wait(timeout=30)

    # Restarts lose nothing: the identity domain and a new integration service still refuse.
    idp[0] = server.restart()
    server = idp[0]
    assert _active(server, alice) is False
    assert _active(server, bob) is True
    (tmp_path / "again").mkdir()
    service = start_service(server, tmp_path / "again")
    try:
        assert _calls(service, alice) == 401
        assert _calls(service, bob) == 200
    finally:
        service.proc.terminate()
        service.proc.wait(timeout=30)
