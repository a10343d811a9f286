"""Real upstream OpenID Providers for the federation tests (docs/federation.md):

- `running_upstream_op`: panva's oidc-provider (tests/node/upstream_op.mjs, a certified OpenID
  Provider) as a Node.js subprocess on a free loopback port;
- `tessera_upstream`: a second identity domain of the test server, with its users and an app
  whose redirect URI is the downstream provider's callback;
- `upstream_sign_in`: the user's browser (an httpx client, redirects one by one) through the
  oidc-provider's development login form, back to the downstream callback.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.domains import ADMIN_PASSWORD, create_domain, domain_cli
from tests.support.server import Server, free_port

__all__ = [
    "NODE_DIR",
    "TesseraUpstream",
    "UpstreamOP",
    "account",
    "callback_uri",
    "jwks_uri",
    "key_client",
    "running_upstream_op",
    "secret_client",
    "tessera_upstream",
    "upstream_sign_in",
]

NODE_DIR = Path(__file__).resolve().parents[1] / "node"


def callback_uri(downstream_issuer: str, provider: str) -> str:
    """The redirect URI to register upstream for the downstream provider `provider`."""
    return f"{downstream_issuer}/oauth2/v1/federation/{provider}/callback"


def jwks_uri(downstream_issuer: str, provider: str) -> str:
    """Where the downstream serves its public keys for `provider` (private_key_jwt)."""
    return f"{downstream_issuer}/oauth2/v1/federation/{provider}/jwks"


# --- panva's oidc-provider ---------------------------------------------------------------------


@dataclass
class UpstreamOP:
    issuer: str
    port: int
    proc: subprocess.Popen[str]
    log_path: Path
    config: dict[str, Any]

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def secret_client(client_id: str, secret: str, redirect_uri: str, **extra: Any) -> dict[str, Any]:
    """An oidc-provider client authenticating with client_secret_basic (RFC 6749 §2.3.1)."""
    return {
        "client_id": client_id,
        "client_secret": secret,
        "redirect_uris": [redirect_uri],
        "token_endpoint_auth_method": "client_secret_basic",
        **extra,
    }


def key_client(
    client_id: str, redirect_uri: str, *, jwks: Any = None, uri: str | None = None
) -> dict[str, Any]:
    """An oidc-provider client authenticating with private_key_jwt (RFC 7523 §2.2), its public
    keys given as a JWK Set (`jwks`) or fetched from `uri` (the downstream's federation jwks)."""
    keys = {"jwks": jwks} if jwks is not None else {"jwks_uri": uri}
    return {
        "client_id": client_id,
        "redirect_uris": [redirect_uri],
        "token_endpoint_auth_method": "private_key_jwt",
        "token_endpoint_auth_signing_alg": "RS256",
        **keys,
    }


def account(
    sub: str,
    email: str,
    *,
    verified: bool = True,
    name: str | None = None,
    username: str | None = None,
    groups: tuple[str, ...] = (),
) -> dict[str, Any]:
    """An account of the oidc-provider; its dev login form takes `sub` as the login."""
    return {
        "sub": sub,
        "email": email,
        "email_verified": verified,
        "name": name or sub,
        "preferred_username": username or sub,
        "groups": list(groups),
    }


@contextmanager
def running_upstream_op(
    workdir: Path,
    *,
    clients: list[dict[str, Any]],
    accounts: list[dict[str, Any]],
    port: int | None = None,
    timeout: float = 30,
) -> Iterator[UpstreamOP]:
    """tests/node/upstream_op.mjs on 127.0.0.1:`port` (a free one unless given: pass it when
    the downstream provider must be added before the upstream runs), until it prints its ready
    line; stopped on leaving. Its stderr (oidc-provider's errors) goes to its log."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    config = {"port": port, "clients": clients, "accounts": accounts}
    log_path = workdir / f"upstream-op-{port}.log"
    log = log_path.open("w")
    proc = subprocess.Popen(
        ["node", str(NODE_DIR / "upstream_op.mjs"), json.dumps(config)],
        cwd=NODE_DIR,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    ready: list[dict[str, Any]] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            log.flush()
            if line.startswith("{") and not ready:
                ready.append(json.loads(line))

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + timeout
    while not ready:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"upstream_op.mjs did not start:\n{log_path.read_text()}")
        time.sleep(0.05)
    op = UpstreamOP(ready[0]["issuer"], port, proc, log_path, config)
    try:
        yield op
    finally:
        op.stop()
        log.close()


_FORM_ACTION = re.compile(r'<form[^>]*action="([^"]+)"', re.I)


def upstream_sign_in(
    http: httpx.Client, start: httpx.Response, login: str, *, until: str
) -> httpx.Response:
    """The browser at the upstream after `start` (the downstream's 303 to the upstream's
    authorization endpoint): through oidc-provider's development login form as `login` (the
    account's sub; any password), one redirect at a time, until a redirect to a URL that
    starts with `until` (the downstream callback), which is returned unfollowed."""
    response = start
    for _ in range(12):
        if response.status_code in (302, 303):
            target = str(response.url.join(response.headers["location"]))
            if target.startswith(until):
                return response
            response = http.get(target)
        elif response.status_code == 200 and 'name="login"' in response.text:
            action = _FORM_ACTION.search(response.text)
            assert action, response.text[:500]
            response = http.post(
                str(response.url.join(action.group(1))),
                data={"prompt": "login", "login": login, "password": "any"},
            )
        else:
            raise AssertionError(
                f"unexpected upstream page {response.status_code}: {response.text[:500]}"
            )
    raise AssertionError("too many redirects at the upstream")


# --- a second Tessera identity domain as the upstream -----------------------------------------


@dataclass
class TesseraUpstream:
    """A domain of the test server acting as the upstream: its view, its app (client_id,
    client_secret) and its users (username → {"id", "password", …})."""

    domain: dict[str, Any]
    app: dict[str, Any]
    users: dict[str, dict[str, Any]]

    @property
    def issuer(self) -> str:
        return str(self.domain["issuer"])

    @property
    def name(self) -> str:
        return str(self.domain["name"])


def tessera_upstream(
    server: Server,
    name: str,
    *,
    redirect_uri: str,
    users: list[dict[str, str]],
) -> TesseraUpstream:
    """Create the identity domain `name` on `server` (its administrator alice, with
    `ADMIN_PASSWORD`), its `users` (each {"username", "email", "name", "password"}) and a
    confidential app registered with `redirect_uri` (the downstream provider's callback),
    allowed openid, profile, email and groups. An administrator sets these users' addresses,
    so this upstream releases them with `email_verified: true`."""
    domain = create_domain(server, name, admin=("alice", ADMIN_PASSWORD))
    made: dict[str, dict[str, Any]] = {}
    for user in users:
        view = domain_cli(
            server,
            name,
            "users",
            "create",
            user["username"],
            "--email",
            user["email"],
            "--name",
            user["name"],
            "--password-stdin",
            input=user["password"] + "\n",
        )
        made[user["username"]] = {**view, "password": user["password"]}
    scopes = [
        arg
        for scope in ("openid", "profile", "email", "groups")
        for arg in ("--allow-scope", scope)
    ]
    app = domain_cli(
        server,
        name,
        "apps",
        "create",
        "--name",
        "Downstream Tessera",
        "--redirect-uri",
        redirect_uri,
        *scopes,
    )
    return TesseraUpstream(domain, app, made)
