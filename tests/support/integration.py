"""The integration service as a real subprocess for end-to-end tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.flow import token_request
from tests.support.server import Server, free_port

__all__ = [
    "API",
    "AUDIENCE",
    "VERSION",
    "Service",
    "bearer",
    "client_token",
    "grant_roles",
    "new_app",
    "revoke_roles",
    "revoke_until_refused",
    "running_service",
    "start_service",
    "whoami_document",
]

API = "/ic/api/integration/v1"
AUDIENCE = "https://integration.tessera.test"  # the demo's integration resource
VERSION = "01.00.0000"  # of the integrations the tests deploy

# `tessera.manage.roles.grant_role` / `revoke_role` run with the identity domain's environment,
# as an operator's command would (the admin CLI for roles is not there yet; this is what it calls).
_ROLES = """
import sys
from datetime import UTC, datetime
from tessera.cli.common import open_domain
from tessera.manage.audit import store_actor
from tessera.manage.roles import find_principal, grant_role, revoke_role

action, kind, ref, resource, *roles = sys.argv[1:]
with open_domain(False) as ctx:
    now = datetime.now(UTC)
    actor = store_actor("test:e2e", ctx.store, lambda: now)
    principal = find_principal(ctx.store, kind, ref)
    for role in roles:
        args = dict(resource=resource, role=role, principal=principal, now=now, actor=actor)
        if action == "grant":
            grant_role(ctx.store, **args)
        else:
            revoke_role(ctx.store, **args, revoke=action == "revoke-tokens")
"""


@dataclass
class Service:
    base_url: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def url(self, path: str) -> str:
        return f"{self.base_url}{API}{path}"

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def start_service(server: Server, workdir: Path, egress_allow: str = "") -> Service:
    """The service, reaching only global addresses and `egress_allow` (its allow-list)."""
    app = server.demo["confidential_app"]
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
    env.update(
        TESSERA_INTEGRATION_ISSUER=server.issuer,
        TESSERA_INTEGRATION_CLIENT_ID=app["client_id"],
        TESSERA_INTEGRATION_CLIENT_SECRET=app["client_secret"],
        TESSERA_INTEGRATION_DATABASE_URL=f"sqlite:///{workdir / 'db' / 'integration.db'}",
        # Short long-polls: the identity domain's feed handler outlives a client that left, and
        # its graceful shutdown waits for it.
        TESSERA_INTEGRATION_REVOCATION_WAIT="1",
        TESSERA_INTEGRATION_EGRESS_ALLOW=egress_allow,
        PYTHONUNBUFFERED="1",
    )
    log_path = workdir / "integration.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tessera", "integration", "serve", "--port", str(port)],
        env=env,
        cwd=workdir,
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"the integration service exited:\n{log_path.read_text()}")
        try:
            if httpx.get(f"{base_url}/health/ready", timeout=1).status_code == 200:
                return Service(base_url, proc, log_path)
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"the integration service is not ready:\n{log_path.read_text()}")
        time.sleep(0.1)


@contextmanager
def running_service(server: Server, workdir: Path, egress_allow: str = "") -> Iterator[Service]:
    """`start_service`, stopped on leaving: the body of a module-scoped service fixture."""
    service = start_service(server, workdir, egress_allow)
    try:
        yield service
    finally:
        service.stop()


def client_token(server: Server, creds: tuple[str, str], scope: str) -> str:
    """A client-credentials access token of the app `creds` for `scope`."""
    data = {"grant_type": "client_credentials", "scope": scope}
    response = token_request(server.base_url, data, auth=creds)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def new_app(
    server: Server, name: str, *scopes: str, roles: tuple[str, ...] = ()
) -> tuple[str, str]:
    """A new client-credentials app allowed `scopes`, granted `roles` of the integration
    resource (its own tokens carry them); its client_id and secret."""
    args = ["admin", "apps", "create", "--name", name, "--grant-type", "client_credentials"]
    for scope in scopes:
        args += ["--allow-scope", scope]
    app = server.cli_json(*args)
    if roles:
        grant_roles(server, "app", app["client_id"], *roles)
    return app["client_id"], app["client_secret"]


def grant_roles(
    server: Server, kind: str, principal: str, *roles: str, resource: str = AUDIENCE
) -> None:
    """Grant `roles` of `resource` (the demo's integration resource by default) to a `user`
    (id or username), `group` or `app` (client id or name) of the server's default domain; the
    next token of the principal for the resource carries them."""
    _roles(server, "grant", kind, principal, resource, roles)


def revoke_roles(
    server: Server,
    kind: str,
    principal: str,
    *roles: str,
    resource: str = AUDIENCE,
    revoke_tokens: bool = False,
) -> None:
    """Take `roles` away; with `revoke_tokens`, also revoke the principal's tokens for the
    resource (`tessera.manage.roles.revoke_role`)."""
    action = "revoke-tokens" if revoke_tokens else "revoke"
    _roles(server, action, kind, principal, resource, roles)


def _roles(
    server: Server, action: str, kind: str, principal: str, resource: str, roles: tuple[str, ...]
) -> None:
    result = subprocess.run(
        [sys.executable, "-c", _ROLES, action, kind, principal, resource, *roles],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def whoami_document(code: str) -> dict[str, Any]:
    """An integration at `VERSION` that answers a GET of `/whoami` with who called (no outbound
    call)."""
    return {
        "code": code,
        "version": VERSION,
        "name": f"Who am I ({code})",
        "trigger": {"method": "GET", "path": "/whoami"},
        "steps": [
            {"type": "map", "name": "who", "output": {"sub": "caller.sub"}},
            {"type": "respond", "status": 200},
        ],
    }


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def revoke_until_refused(
    server: Server, token: str, call: Callable[[], httpx.Response], creds: tuple[str, str]
) -> httpx.Response:
    """Revoke `token` at the identity domain (RFC 7009, as the app of `creds`), then repeat
    `call` until the service stops accepting it (the revocation feed's next poll); the refusal.
    Fails if it still answers 200 after 5 s."""
    revoked = httpx.post(
        f"{server.issuer}/oauth2/v1/revoke",
        data={"token": token, "token_type_hint": "access_token"},
        auth=creds,
    )
    assert revoked.status_code == 200, revoked.text
    deadline = time.monotonic() + 5
    while (answer := call()).status_code == 200:
        assert time.monotonic() < deadline, "the revocation did not reach the integration service"
        time.sleep(0.1)
    return answer
