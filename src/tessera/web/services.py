"""The objects a running node builds once from its context and shares across requests."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request

from tessera.audit import AuditSink, DomainAudit
from tessera.caching import TTLCache
from tessera.context import Context
from tessera.domain.admin import admin_only_scopes
from tessera.domain.identity_domains import IdentityDomain, domain_prefix
from tessera.domain.model import Client, Resource, UpstreamProvider, User
from tessera.domain.scopes import normalize_audience
from tessera.manage.mail import Mailer, mailer_for
from tessera.manage.password_reset import ResetSetup
from tessera.oauth.client_auth import AssertionCheck
from tessera.oauth.client_jwks import JwksFetcher, allows_insecure_jwks_uri
from tessera.oauth.device import DEVICE_KEY_PURPOSE
from tessera.oauth.dpop import NONCE_KEY_PURPOSE, DPoPPolicy
from tessera.oauth.federation.metadata import UpstreamClient
from tessera.oauth.interaction.login import LoginPolicy
from tessera.oauth.interaction.password_reset import RESET_KEY_PURPOSE, ResetMailPolicy
from tessera.oauth.interaction.requirements import SignInRules
from tessera.oauth.interaction.second_factor import FactorKeys, RelyingParty
from tessera.oauth.interaction.throttle import ThrottlePolicy
from tessera.oauth.memberships import APP_ROLES_TTL
from tessera.oauth.metadata import assertion_audiences
from tessera.oauth.revocation_state import RevocationState
from tessera.oauth.token import TokenEndpoint, TokenPolicy
from tessera.oauth.tokens import TokenIssuer
from tessera.shared.dpop import NonceSource
from tessera.web.metrics import Metrics
from tessera.web.wakeup import Wakeup

if TYPE_CHECKING:
    from tessera.resource.validator import TokenValidator

__all__ = [
    "SCOPE_KEY",
    "Node",
    "Services",
    "StoreHealth",
    "build_node",
    "build_services",
    "services",
]

_TEMPLATES = Path(__file__).parent / "templates"
# Where the domain router puts the request's domain services in the ASGI scope.
SCOPE_KEY = "tessera.services"


class StoreHealth:
    """Whether the database answered lately. After a failure anywhere, issuance pings the
    database before it issues anything, so no token leaves while the database is down
    (docs/security.md rule 26), even when the app and its keys are in the in-process cache."""

    def __init__(self, ping: Callable[[], None]) -> None:
        self._ping = ping
        self.down = False

    def mark_down(self) -> None:
        self.down = True

    def check(self) -> None:
        """Raise `StoreUnavailable` while the database is still down."""
        if self.down:
            self._ping()
            self.down = False


@dataclass
class Node:
    """What one process shares across its identity domains: one audit queue, one wake-up
    channel, one metrics registry, one template environment, one health flag."""

    ctx: Context  # the default domain's
    templates: Environment
    metrics: Metrics
    wakeup: Wakeup
    health: StoreHealth
    audit: AuditSink
    mailer: Mailer  # SMTP in the background, or `DisabledMailer` without TESSERA_SMTP_HOST
    # Apps' `jwks_uri`s for private_key_jwt, fetched and cached once for every domain.
    jwks_fetcher: JwksFetcher
    # Upstream OpenID providers' discovery documents, keys (through `jwks_fetcher`), token and
    # userinfo endpoints, for every domain's federated sign-ins (docs/federation.md).
    upstream: UpstreamClient


@dataclass
class Services:
    """One identity domain's objects on this node (docs/domains.md): its context (issuer,
    store view, key ring), its token endpoints and caches, and the node's shared parts."""

    ctx: Context
    domain: IdentityDomain
    prefix: str  # the path its URLs start with on the base URL: '' or '/domains/<name>'
    issuer: TokenIssuer
    token_endpoint: TokenEndpoint
    # The same endpoint with lookups that never do I/O: client_credentials for a cached app
    # runs on the event loop, without a hop to a worker thread.
    inline_token_endpoint: TokenEndpoint
    revocations: RevocationState
    audit: DomainAudit
    clients: TTLCache[str, Client | None]
    resources: TTLCache[str, list[Resource]]
    users: TTLCache[str, User | None]
    # An app's own roles by (client id, resource id), for client-credentials tokens
    # (`tessera.oauth.memberships.APP_ROLES_TTL`).
    app_roles: TTLCache[tuple[str, str], tuple[str, ...]]
    templates: Environment
    csrf_key: bytes
    secure_cookies: bool
    health: StoreHealth
    wakeup: Wakeup
    metrics: Metrics
    login_policy: LoginPolicy
    node: Node
    factor_keys: FactorKeys
    relying_party: RelyingParty
    reset: ResetSetup  # password reset by e-mail (off when the node's mailer is disabled)
    # The domain's sign-in rules from its row (any node may change them): read at most every
    # 2 s, so a stricter policy applies everywhere within that.
    rules: TTLCache[str, SignInRules]
    # The domain's enabled upstream providers (docs/federation.md), for the sign-in page's
    # buttons and home-realm discovery: a provider disabled on any node is gone within 2 s.
    providers: TTLCache[str, list[UpstreamProvider]]
    # Client assertions (private_key_jwt, client_secret_jwt): the domain's `aud` values, the
    # shared jti replay state and the node's jwks_uri fetcher.
    assertions: AssertionCheck | None = None
    # The admin API's token check of this domain, built on first use (tessera.web.admin.guard),
    # so it is kept and dropped with these services.
    admin_validator: TokenValidator | None = None

    @property
    def cookie_suffix(self) -> str:
        """Appended to cookie names so that a browser's cookies of two domains on one host
        never meet (the default domain keeps its names)."""
        return "" if self.domain.is_default else f"_{self.domain.id}"

    def client(self, client_id: str) -> Client | None:
        return self.clients.get(client_id)

    def sign_in_rules(self) -> SignInRules:
        return self.rules.get("rules")

    def resource_list(self) -> list[Resource]:
        return self.resources.get("all")

    def provider_list(self) -> list[UpstreamProvider]:
        """The enabled upstream providers, by name."""
        return self.providers.get("enabled")

    def cached_provider_list(self) -> list[UpstreamProvider]:
        """From memory only; raises `NotCached` (the authorization endpoint's fast path)."""
        return self.providers.cached("enabled")

    def cached_client(self, client_id: str) -> Client | None:
        """From memory only; raises `NotCached` (see `inline_token_endpoint`)."""
        return self.clients.cached(client_id)

    def cached_resource_list(self) -> list[Resource]:
        return self.resources.cached("all")

    def cached_resource_by_audience(self, audience: str) -> Resource | None:
        wanted = normalize_audience(audience)
        return next(
            (r for r in self.cached_resource_list() if normalize_audience(r.audience) == wanted),
            None,
        )

    def app_roles_of(self, client_id: str, resource_id: str) -> tuple[str, ...]:
        """An app's own roles on a resource, cached `APP_ROLES_TTL` seconds."""
        return self.app_roles.get((client_id, resource_id))

    def cached_app_roles_of(self, client_id: str, resource_id: str) -> tuple[str, ...]:
        """From memory only; raises `NotCached` (see `inline_token_endpoint`)."""
        return self.app_roles.cached((client_id, resource_id))

    def resource_by_audience(self, audience: str) -> Resource | None:
        wanted = normalize_audience(audience)
        return next(
            (r for r in self.resource_list() if normalize_audience(r.audience) == wanted), None
        )


def _login_policy(ctx: Context) -> LoginPolicy:
    settings = ctx.settings
    throttle = ThrottlePolicy(
        window_seconds=settings.login_failure_window,
        free_per_pair=settings.login_max_failures,
        free_per_account=10 * settings.login_max_failures,
        free_per_address=settings.login_max_failures_per_address,
        first_delay_seconds=settings.login_first_delay,
    )
    return LoginPolicy(throttle, settings.session_ttl, ctx.subkey("known-device cookie"))


def _rules_reader(ctx: Context) -> Callable[[str], SignInRules]:
    def read(_: str) -> SignInRules:
        domain = ctx.store.domains.get(ctx.domain_id)
        settings = domain.settings if domain is not None else None
        if settings is None:
            return SignInRules()
        return SignInRules(
            mfa_policy=settings.mfa_policy or "optional",
            admin_mfa_required=bool(settings.admin_mfa_required),
            require_pushed_authorization_requests=bool(
                settings.require_pushed_authorization_requests
            ),
        )

    return read


def _relying_party(settings_issuer: str, domain: IdentityDomain) -> RelyingParty:
    parts = urlsplit(settings_issuer)
    return RelyingParty(
        id=parts.hostname or "localhost",
        origin=f"{parts.scheme}://{parts.netloc}",
        name=domain.display_name or "Tessera",
    )


def build_node(ctx: Context) -> Node:
    """The shared parts, over the default domain's context."""
    settings = ctx.settings
    health = StoreHealth(ctx.store.ping)
    redis_url = settings.redis_url.get_secret_value() if settings.redis_url else None
    wakeup = Wakeup(redis_url, settings.revocation_channel)
    listeners = getattr(ctx.store, "revocation_listeners", None)
    if listeners is not None:
        listeners.append(wakeup.notify)
    root = ctx.store
    # http jwks_uris and upstream issuers only on loopback, and only on a development node (an
    # http issuer on loopback): docs/client-authentication.md, docs/federation.md.
    insecure_loopback = allows_insecure_jwks_uri(settings.issuer)
    jwks_fetcher = JwksFetcher(
        allow_insecure_loopback=insecure_loopback,
        refetch_interval=settings.jwks_refetch_interval,
    )
    return Node(
        ctx=ctx,
        templates=Environment(
            loader=FileSystemLoader(_TEMPLATES),
            autoescape=select_autoescape(default=True, default_for_string=True),
        ),
        metrics=Metrics(),
        wakeup=wakeup,
        health=health,
        audit=AuditSink(
            root.audit,
            ctx.clock,
            on_error=health.mark_down,
            store_for=lambda domain_id: root.for_domain(domain_id).audit,
            domain_id=root.domain_id,
        ),
        mailer=mailer_for(settings),
        jwks_fetcher=jwks_fetcher,
        upstream=UpstreamClient(jwks_fetcher),
    )


def build_services(node: Node, domain: IdentityDomain, ctx: Context | None = None) -> Services:
    """One domain's services (`ctx`: its context, else derived from the node's)."""
    ctx = ctx if ctx is not None else node.ctx.for_domain(domain)
    settings = ctx.settings
    clients: TTLCache[str, Client | None] = TTLCache(ctx.store.clients.get, max_entries=1000)
    resources: TTLCache[str, list[Resource]] = TTLCache(
        lambda _: ctx.store.resources.list(), max_entries=1
    )
    # Users for minting tokens at refresh; disabling a user or changing a password revokes the
    # user's grants at once, so a name up to two seconds old is all this cache can serve.
    users: TTLCache[str, User | None] = TTLCache(ctx.store.users.get, max_entries=1000)
    issuer = TokenIssuer(settings.issuer, ctx.keys)
    services = Services(
        ctx=ctx,
        domain=domain,
        prefix=domain_prefix(domain),
        issuer=issuer,
        token_endpoint=None,  # type: ignore[arg-type]  # set below: it needs the lookups
        inline_token_endpoint=None,  # type: ignore[arg-type]
        revocations=RevocationState(ctx.store.revocations),
        audit=node.audit.for_domain(domain.id),
        clients=clients,
        resources=resources,
        users=users,
        app_roles=TTLCache(
            lambda key: ctx.store.roles.roles_of_app(*key), APP_ROLES_TTL, max_entries=10000
        ),
        templates=node.templates,
        csrf_key=ctx.subkey("csrf"),
        secure_cookies=settings.issuer.startswith("https://"),
        health=node.health,
        wakeup=node.wakeup,
        metrics=node.metrics,
        login_policy=_login_policy(ctx),
        node=node,
        factor_keys=FactorKeys(
            sealing=ctx.subkey("second factors"),
            recovery=ctx.subkey("recovery codes"),
            challenges=ctx.subkey("webauthn challenges"),
        ),
        relying_party=_relying_party(settings.issuer, domain),
        reset=ResetSetup(
            key=ctx.subkey(RESET_KEY_PURPOSE),
            mailer=node.mailer,
            domain_display_name=domain.display_name or "Tessera",
            # Within the login-failure window, which housekeeping keeps.
            throttle=ResetMailPolicy(settings.login_failure_window),
        ),
        rules=TTLCache(_rules_reader(ctx), max_entries=1),
        providers=TTLCache(
            lambda _: [p for p in ctx.store.upstream_providers.list() if p.enabled],
            max_entries=1,
        ),
    )
    _add_token_endpoints(services, users)
    return services


def _add_token_endpoints(services: Services, users: TTLCache[str, User | None]) -> None:
    """The domain's token endpoint, its in-memory twin and the client-assertion checks."""
    ctx, settings = services.ctx, services.ctx.settings
    policy = TokenPolicy(
        default_access_ttl=settings.access_token_ttl,
        id_token_ttl=settings.id_token_ttl,
        refresh_ttl=settings.refresh_token_ttl,
        refresh_absolute_ttl=settings.refresh_token_absolute_ttl,
        refresh_grace_seconds=settings.refresh_grace_seconds,
    )
    common: dict[str, Any] = {
        "pepper": ctx.secret_pepper,
        "refresh_key": ctx.subkey("refresh-successor"),
        "clock": ctx.clock,
        "policy": policy,
        "admin_scopes": admin_only_scopes(settings.issuer, services.domain.id),
    }
    services.assertions = AssertionCheck(
        issuer=settings.issuer,
        audiences=assertion_audiences(settings.issuer),
        use_once=ctx.store.nonces.use_once,
        fetcher=services.node.jwks_fetcher,
    )
    # The nonce key derives from TESSERA_SECRET_KEY: every node of the domain accepts the
    # nonces any of them handed out (RFC 9449 §8).
    nonces = NonceSource(ctx.subkey(NONCE_KEY_PURPOSE)) if settings.dpop_nonce else None
    # How the domain's endpoints check DPoP proofs (RFC 9449): `token_endpoint.dpop`.
    common["dpop"] = DPoPPolicy(ctx.store.nonces.use_once, nonces)
    services.token_endpoint = TokenEndpoint(
        ctx.store,
        services.issuer,
        lookup_client=services.client,
        lookup_resource=services.resource_by_audience,
        list_resources=services.resource_list,
        lookup_user=users.get,
        assertions=services.assertions,
        revocations=services.revocations,
        device_key=ctx.subkey(DEVICE_KEY_PURPOSE),  # RFC 8628: device codes' keyed hashes
        app_roles=services.app_roles_of,
        **common,
    )
    services.inline_token_endpoint = TokenEndpoint(
        ctx.store,
        services.issuer,
        lookup_client=services.cached_client,
        lookup_resource=services.cached_resource_by_audience,
        list_resources=services.cached_resource_list,
        app_roles=services.cached_app_roles_of,
        **common,
    )


def services(request: Request) -> Services:
    """The services of the request's identity domain: put on the request's scope by the domain
    router (`tessera.web.domains`), else the default domain's on the application's state."""
    found: Services | None = request.scope.get(SCOPE_KEY)
    if found is not None:
        return found
    svc: Services = request.app.state.services
    return svc
