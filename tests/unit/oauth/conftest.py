"""The protocol core on the in-memory store with a clock the test moves: no server, no sleeps.

`core` builds what a node builds (key ring, token issuer, token endpoint) over a `MemoryStore`;
`core.clock.advance(seconds)` moves time for expiry, grace windows and throttling. Tests that
need HTTP live in `tests/e2e/`.

Tests obtain tokens only through the helpers below (`client_credentials`, `authorize`, `redeem`,
`code_flow`, `refresh`), so `token()` is the one place that calls the token endpoint.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import pytest

from tessera.domain.admin import admin_scope
from tessera.domain.hashing import keyed_hash, new_id, new_token, sha256_b64
from tessera.domain.model import (
    AuthorizationCode,
    Client,
    ClientKind,
    Resource,
    SecretHash,
    SigningKey,
    User,
)
from tessera.domain.passwords import hash_password
from tessera.oauth.authorize import issue_code, validate_authorization_request
from tessera.oauth.introspection import introspect
from tessera.oauth.keyring import MAX_TOKEN_LIFETIME, KeyRing
from tessera.oauth.pkce import s256
from tessera.oauth.revocation import revoke
from tessera.oauth.revocation_state import RevocationState
from tessera.oauth.token import TokenEndpoint, TokenPolicy
from tessera.oauth.tokens import TokenIssuer
from tessera.oauth.userinfo import userinfo
from tessera.store.memory import MemoryStore

ISSUER = "http://127.0.0.1:8000"
PEPPER = b"p" * 32
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
CODE_TTL = 60  # seconds, the default of TESSERA_CODE_TTL (docs/architecture.md, "codes")
ORDERS = "https://orders.test/"
DEVICE_KEY = b"d" * 32  # the key of the device codes' hashes (RFC 8628)
VERIFIER = "v" * 43  # the PKCE verifier `code_flow` uses for public apps (RFC 7636 §4.1)


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
    secrets: dict[str, str] = field(default_factory=dict)  # client_id -> its current secret

    @property
    def admin_scope(self) -> str:
        return admin_scope(ISSUER)

    def token_endpoint(self, **options: Any) -> TokenEndpoint:
        """The domain's token endpoint; `options`: more of its keyword arguments (`assertions`,
        `dpop`)."""
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
            admin_scopes=frozenset((self.admin_scope,)),
            device_key=DEVICE_KEY,
            **options,
        )

    def userinfo(self, token: str, **dpop: Any) -> dict[str, Any]:
        """The UserInfo endpoint's answer for `token` now; `dpop`: the request's scheme and
        proof (`presented`) and the DPoP policy (RFC 9449 §7)."""
        return userinfo(
            token,
            issuer=self.issuer,
            revocations=self.revocations(),
            lookup_user=self.store.users.get,
            now=self.clock(),
            **dpop,
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
        self, audience: str = ORDERS, scopes: tuple[str, ...] = ("read", "write")
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
        client_id: str | None = None,
        secret: str | None = None,
        **kw: object,
    ) -> tuple[Client, str | None]:
        """A trusted application and its secret (None for a public app)."""
        secret = None if public else secret or new_token(32)
        client_id = client_id or new_id("app-")
        client = Client(
            client_id=client_id,
            name=str(kw.pop("name", f"Test app {client_id}")),  # names are unique
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
        if secret is not None:
            self.secrets[client.client_id] = secret
        return client, secret

    # --- getting tokens: the only callers of the token endpoint ---------------------------------

    def credentials(self, app: Client) -> dict[str, str]:
        """`client_secret_post` credentials of a registered app; a public app sends its id."""
        secret = self.secrets.get(app.client_id)
        return {"client_id": app.client_id, **({} if secret is None else {"client_secret": secret})}

    def token(self, form: Mapping[str, str], authorization: str | None = None) -> dict[str, Any]:
        """The token endpoint's §5.1 body (RFC 6749), or its `OAuthError`."""
        return self.token_endpoint().handle(authorization, dict(form), set()).body

    def client_credentials(
        self, app: Client, scope: str | None = "https://orders.test/read", **form: str
    ) -> dict[str, Any]:
        """RFC 6749 §4.4, authenticated with `client_secret_post`."""
        scoped = {} if scope is None else {"scope": scope}
        return self.token(
            {"grant_type": "client_credentials", **self.credentials(app), **scoped, **form}
        )

    def authorize(
        self, app: Client, user: User, scope: str = "openid https://orders.test/read", **params: str
    ) -> str:
        """The authorization endpoint for a signed-in `user` who consents: returns the code.
        A public app gets the challenge of `VERIFIER` unless `params` says otherwise."""
        if app.is_public:
            params = {"code_challenge": s256(VERIFIER), "code_challenge_method": "S256", **params}
        request = validate_authorization_request(
            {"client_id": app.client_id, "response_type": "code", "scope": scope, **params},
            set(),
            self.store.clients.get,
            self.store.resources.list(),
        )
        now = self.clock()
        return issue_code(
            self.store.codes,
            request,
            user_id=user.id,
            auth_time=now,
            session_id=None,
            now=now,
            ttl_seconds=CODE_TTL,
        )

    def redeem(self, app: Client, code: str, **form: str) -> dict[str, Any]:
        """RFC 6749 §4.1.3; a public app sends `VERIFIER` unless `form` says otherwise."""
        pkce = {"code_verifier": VERIFIER} if app.is_public else {}
        form = {"grant_type": "authorization_code", "code": code, **pkce, **form}
        return self.token({**self.credentials(app), **form})

    def code_flow(
        self, app: Client, user: User, scope: str = "openid https://orders.test/read"
    ) -> dict[str, Any]:
        """Authorization request, consent and code redemption: the token response."""
        return self.redeem(app, self.authorize(app, user, scope))

    def refresh(self, app: Client, refresh_token: str, **form: str) -> dict[str, Any]:
        """RFC 6749 §6."""
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token, **form}
        return self.token({**self.credentials(app), **form})

    # --- introspection and revocation as the web layer calls them ------------------------------

    def introspect(self, caller: Client, token: str, **form: str) -> dict[str, Any]:
        """RFC 7662 §2 for an authenticated `caller`, with revocation state read afresh."""
        form = {"token": token, **form}
        return introspect(caller, form, self.store, self.issuer, self.revocations(), self.clock())

    def revoke(self, client: Client, token: str, **form: str) -> None:
        """RFC 7009 §2 for an authenticated `client`."""
        now = self.clock()
        keep = max(MAX_TOKEN_LIFETIME, timedelta(seconds=self.policy.refresh_absolute_ttl))
        revoke(client, {"token": token, **form}, self.store, self.issuer, now, now + keep)


_HASHES: dict[str, str] = {}
_KEYS: list[SigningKey] = []


class _SharedKeyRing(KeyRing):
    """Opens each sealed key once per test run: loading an RSA private key costs ~40 ms
    (OpenSSL's key check), which would dominate the core's tests."""

    _opened: ClassVar[dict[tuple[str, bytes], Any]] = {}

    def _decrypt(self, key: SigningKey) -> Any:
        cache_key = (key.kid, key.private_key_enc)
        if cache_key not in self._opened:
            self._opened[cache_key] = super()._decrypt(key)
        return self._opened[cache_key]


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
    keys = _SharedKeyRing(store.keys, b"k" * 32, clock)
    for key in _KEYS:  # the same sealed keys in every test: RSA key generation is slow
        store.keys.add(key)
    if keys.ensure():
        _KEYS[:] = store.keys.list()
    keys.reload()
    yield Core(clock=clock, store=store, keys=keys, issuer=TokenIssuer(ISSUER, keys))
    store.close()
