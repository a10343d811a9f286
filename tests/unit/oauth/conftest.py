"""The protocol core on the in-memory store with a clock the test moves: no server, no sleeps.

`core` builds what a node builds (key ring, token issuer, token endpoint) over a `MemoryStore`;
`core.clock.advance(seconds)` moves time for expiry, grace windows and throttling. Tests that
need HTTP live in `tests/e2e/`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from tessera.domain.admin import admin_scope
from tessera.domain.hashing import keyed_hash, new_id, new_token, sha256_b64
from tessera.domain.model import (
    AuthorizationCode,
    Client,
    ClientKind,
    Resource,
    SecretHash,
    User,
)
from tessera.domain.passwords import hash_password
from tessera.oauth.keyring import KeyRing
from tessera.oauth.revocation_state import RevocationState
from tessera.oauth.token import TokenEndpoint, TokenPolicy
from tessera.oauth.tokens import TokenIssuer
from tessera.store.memory import MemoryStore

ISSUER = "http://127.0.0.1:8000"
PEPPER = b"p" * 32
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@dataclass
class Clock:
    """The injected clock: starts at `T0` and moves only when a test says so."""

    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


@dataclass
class Core:
    """One identity domain's protocol core over the memory store."""

    clock: Clock
    store: MemoryStore
    keys: KeyRing
    issuer: TokenIssuer
    policy: TokenPolicy = field(default_factory=TokenPolicy)
    pepper: bytes = PEPPER

    @property
    def admin_scope(self) -> str:
        return admin_scope(ISSUER)

    def token_endpoint(self) -> TokenEndpoint:
        return TokenEndpoint(
            self.store,
            self.issuer,
            pepper=self.pepper,
            refresh_key=b"r" * 32,
            clock=self.clock,
            lookup_client=self.store.clients.get,
            lookup_resource=self.store.resources.get_by_audience,
            list_resources=self.store.resources.list,
            policy=self.policy,
            admin_scope=self.admin_scope,
        )

    def issue_code(
        self,
        app: Client,
        user: User,
        *,
        scopes: tuple[str, ...] = ("openid", "profile"),
        audience: str | None = None,
        challenge: str | None = None,
        nonce: str | None = None,
        redirect_uri: str | None = None,
    ) -> str:
        """An authorization code as the authorization endpoint stores it (60 s); its value."""
        value = new_token(32)
        now = self.clock()
        self.store.codes.add(
            AuthorizationCode(
                code_hash=sha256_b64(value),
                client_id=app.client_id,
                user_id=user.id,
                redirect_uri=redirect_uri or app.redirect_uris[0],
                scopes=scopes,
                audience=audience,
                auth_time=now,
                expires_at=now + timedelta(seconds=60),
                grant_id=new_id("g-"),
                issued_at=now,
                code_challenge=challenge,
                nonce=nonce,
                session_id="s-1",
            )
        )
        return value

    def revocations(self) -> RevocationState:
        return RevocationState(self.store.revocations)

    # --- what an administrator registers ------------------------------------------------------

    def add_user(
        self, username: str = "alice", password: str = "correct horse battery", **kw: object
    ) -> User:
        user = User(
            id=new_id("u-"),
            username=username,
            password_hash=_hash(password),
            display_name=str(kw.pop("display_name", username.title())),
            email=kw.pop("email", f"{username}@example.test"),  # type: ignore[arg-type]
            is_admin=bool(kw.pop("is_admin", False)),
            created_at=self.clock(),
            password_changed_at=self.clock(),
        )
        assert not kw, kw
        self.store.users.add(user)
        return user

    def add_resource(
        self, audience: str = "https://orders.test/", scopes: tuple[str, ...] = ("read", "write")
    ) -> Resource:
        resource = Resource(new_id("r-"), audience, audience, scopes, self.clock())
        self.store.resources.add(resource)
        return resource

    def add_app(
        self,
        *,
        public: bool = False,
        grant_types: tuple[str, ...] = ("authorization_code", "refresh_token"),
        allowed_scopes: tuple[str, ...] = ("openid", "profile", "https://orders.test/read"),
        redirect_uris: tuple[str, ...] = ("https://app.test/cb",),
        **kw: object,
    ) -> tuple[Client, str | None]:
        """A trusted application and its secret (None for a public app)."""
        secret = None if public else new_token(32)
        client = Client(
            client_id=new_id("app-"),
            name=str(kw.pop("name", "Test app")),
            kind=ClientKind.PUBLIC if public else ClientKind.CONFIDENTIAL,
            redirect_uris=redirect_uris,
            grant_types=grant_types,
            allowed_scopes=allowed_scopes,
            created_at=self.clock(),
            secret_hashes=() if secret is None else (
                SecretHash(keyed_hash(self.pepper, secret), self.clock()),),
            **kw,  # type: ignore[arg-type]
        )  # fmt: skip
        self.store.clients.add(client)
        return client, secret


_HASHES: dict[str, str] = {}


def _hash(password: str) -> str:
    """Argon2 once per password per test run: the core's tests are about the protocol."""
    if password not in _HASHES:
        _HASHES[password] = hash_password(password)
    return _HASHES[password]


@pytest.fixture
def core() -> Iterator[Core]:
    clock = Clock()
    store = MemoryStore()
    store.ensure_domain("Default", clock())
    keys = KeyRing(store.keys, b"k" * 32, clock)
    keys.ensure()
    yield Core(clock=clock, store=store, keys=keys, issuer=TokenIssuer(ISSUER, keys))
    store.close()
