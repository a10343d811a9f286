"""`tessera admin providers …`: upstream OpenID Connect providers the domain's users sign in
through (docs/federation.md): add, list, show, update, enable, disable, remove, test.

A client secret is never a command-line argument (the process list shows arguments to every
user of the machine): it is read from stdin's first line with `--client-secret-stdin`, else
from the environment variable `TESSERA_PROVIDER_SECRET`, else asked for at a terminal.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tessera.cli.common import JsonOpt, open_domain
from tessera.cli.output import console, emit, fail, table

# The rules (tessera.manage) are imported in the commands: see tessera/cli/__init__.py.
if TYPE_CHECKING:
    from tessera.context import Context
    from tessera.manage.audit import Actor
    from tessera.manage.providers import ProviderSetup
    from tessera.oauth.federation.metadata import UpstreamClient

__all__ = ["SECRET_ENV", "providers_app"]

SECRET_ENV = "TESSERA_PROVIDER_SECRET"

providers_app = typer.Typer(
    help="Upstream OpenID Connect providers the domain's users sign in through.",
    no_args_is_help=True,
)

RefArg = Annotated[str, typer.Argument(help="The provider's name or id.")]
SecretStdinOpt = Annotated[
    bool,
    typer.Option(
        "--client-secret-stdin",
        help=f"Read the client secret from stdin's first line (else ${SECRET_ENV}, else asked).",
    ),
]
AuthOpt = Annotated[
    str | None,
    typer.Option(
        help="How we authenticate at its token endpoint: client_secret_basic, "
        "client_secret_post, or private_key_jwt (with a key of ours, generated here)."
    ),
]
DisplayOpt = Annotated[str | None, typer.Option(help="The sign-in button's name.")]
ScopeOpt = Annotated[
    list[str] | None,
    typer.Option("--scope", help="A scope to ask for (repeatable; openid is always asked for)."),
]
UsernameClaimOpt = Annotated[
    str | None, typer.Option(help="The upstream claim of the username (else the e-mail's).")
]
EmailClaimOpt = Annotated[str | None, typer.Option(help="The upstream claim of the e-mail.")]
NameClaimOpt = Annotated[str | None, typer.Option(help="The upstream claim of the full name.")]
GroupsClaimOpt = Annotated[
    str | None,
    typer.Option(
        help="The upstream claim listing the user's groups: they join the domain's groups of "
        "the same names (none are created)."
    ),
]
JitOpt = Annotated[
    bool | None,
    typer.Option("--jit/--no-jit", help="Create an account at a first sign-in."),
]
LinkOpt = Annotated[
    bool | None,
    typer.Option(
        "--link-existing/--no-link-existing",
        help="Link a first sign-in to the account with the same verified e-mail address "
        "(never an administrator's).",
    ),
]
SyncOpt = Annotated[
    bool | None,
    typer.Option(
        "--sync-groups/--no-sync-groups",
        help="The groups claim is the whole truth: a sign-in ends the memberships an earlier "
        "sign-in through this provider made that the claim no longer names (an "
        "administrator's stay). Needs --groups-claim.",
    ),
]
DomainOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--email-domain",
        help="Users with e-mail addresses of this domain sign in through it (repeatable).",
    ),
]
DescriptionOpt = Annotated[str | None, typer.Option(help="What the provider is.")]
NoCheckOpt = Annotated[
    bool,
    typer.Option("--no-check", help="Do not fetch its discovery document and keys before saving."),
]

_HEADERS = ["name", "display name", "issuer", "auth", "enabled", "linked", "e-mail domains"]
_HINT = "`tessera admin providers list` shows the providers (by name or id)"


def _actor(ctx: Context) -> Actor:
    from tessera.manage.audit import cli_actor

    return cli_actor(ctx.store, ctx.clock)


def _setup(ctx: Context) -> ProviderSetup:
    from tessera.manage.providers import provider_setup

    return provider_setup(ctx.settings.issuer, ctx.subkey)


@contextmanager
def _upstream(ctx: Context) -> Iterator[UpstreamClient]:
    """A client for upstream providers for this command (a node has one), with the node's
    rule: http only on loopback, and only on a development node."""
    from tessera.oauth.client_jwks import JwksFetcher, allows_insecure_jwks_uri
    from tessera.oauth.federation.metadata import UpstreamClient

    insecure = allows_insecure_jwks_uri(ctx.settings.issuer)
    fetcher = JwksFetcher(allow_insecure_loopback=insecure)
    client = UpstreamClient(fetcher)
    try:
        yield client
    finally:
        client.close()
        fetcher.close()


@contextmanager
def _hinted(as_json: bool) -> Iterator[None]:
    from tessera.manage.errors import NotFoundError

    try:
        yield
    except NotFoundError as exc:
        fail(str(exc), as_json, hint=_HINT if str(exc).startswith("no provider ") else None)


def _client_secret(from_stdin: bool, needed: bool, as_json: bool) -> str | None:
    """The client secret, when `--client-secret-stdin` is given or it is `needed`."""
    if from_stdin:
        secret = sys.stdin.readline().rstrip("\r\n")
        if not secret:
            fail("no client secret on stdin", as_json)
        return secret
    if not needed:
        return None
    if os.environ.get(SECRET_ENV):
        return os.environ[SECRET_ENV]
    if not sys.stdin.isatty():
        fail(
            "no client secret given",
            as_json,
            hint=f"pipe it with --client-secret-stdin, or set {SECRET_ENV}",
        )
    return str(typer.prompt("Client secret", hide_input=True))


def _print_registration(view: dict[str, Any]) -> None:
    """What the administrator registers at the provider."""
    console.print(f"Redirect URI to register at the provider: [bold]{view['redirect_uri']}[/]")
    if view["jwks_uri"]:
        console.print(f"Our public keys (private_key_jwt): [bold]{view['jwks_uri']}[/]")


def _print_provider(view: dict[str, Any], title: str) -> None:
    hidden = {"jwks", "redirect_uri", "jwks_uri"}
    rows = [[k, v] for k, v in view.items() if k not in hidden]
    console.print(table(["field", "value"], rows, title=title))
    _print_registration(view)


def _shown(ctx: Context, provider: Any, setup: ProviderSetup | None = None) -> dict[str, Any]:
    from tessera.manage.providers import provider_view

    return provider_view(ctx.store, setup or _setup(ctx), provider)


@providers_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="A slug for its URLs: a-z, 0-9 and hyphens.")],
    issuer: Annotated[str, typer.Option(help="Its issuer URL, exactly as it names itself.")],
    client_id: Annotated[str, typer.Option(help="The client id it gave us.")],
    auth_method: AuthOpt = "client_secret_basic",
    client_secret_stdin: SecretStdinOpt = False,
    display_name: DisplayOpt = None,
    scope: ScopeOpt = None,
    username_claim: UsernameClaimOpt = "preferred_username",
    email_claim: EmailClaimOpt = "email",
    name_claim: NameClaimOpt = "name",
    groups_claim: GroupsClaimOpt = None,
    sync_groups: SyncOpt = False,
    jit: JitOpt = True,
    link_existing: LinkOpt = False,
    email_domain: DomainOpt = None,
    disabled: Annotated[
        bool, typer.Option("--disabled", help="Add it disabled (enable it later).")
    ] = False,
    description: Annotated[str, typer.Option(help="What the provider is.")] = "",
    no_check: NoCheckOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Add a provider; its discovery document and keys are fetched first (unless --no-check).
    Register the redirect URI it prints at the provider (and for private_key_jwt our keys)."""
    from tessera.manage import providers as rules

    # An explicit "" is refused by the rules, not silently replaced by the default.
    method = auth_method if auth_method is not None else "client_secret_basic"
    secret = _client_secret(client_secret_stdin, method != "private_key_jwt", as_json)
    with open_domain(as_json) as ctx, _upstream(ctx) as upstream:
        provider = rules.create_provider(
            ctx.store,
            _setup(ctx),
            now=ctx.clock(),
            actor=_actor(ctx),
            name=name,
            issuer=issuer,
            client_id=client_id,
            auth_method=method,
            client_secret=secret,
            display_name=display_name,
            scopes=scope or rules.DEFAULT_SCOPES,
            username_claim=username_claim if username_claim is not None else "preferred_username",
            email_claim=email_claim if email_claim is not None else "email",
            name_claim=name_claim if name_claim is not None else "name",
            groups_claim=groups_claim,
            sync_groups=bool(sync_groups),
            jit=bool(jit),
            link_existing=bool(link_existing),
            email_domains=email_domain or (),
            enabled=not disabled,
            description=description,
            upstream=upstream,
            check=not no_check,
        )
        view = _shown(ctx, provider)
        emit(view, as_json, lambda: _print_provider(view, f"Added provider {provider.name}"))


@providers_app.command("list")
def list_providers(as_json: JsonOpt = False) -> None:
    """The providers, by name, with how many accounts are linked through each."""
    from tessera.manage import providers as rules

    with open_domain(as_json) as ctx:
        setup = _setup(ctx)  # the keys derived once for every row
        views = [_shown(ctx, p, setup) for p in rules.list_providers(ctx.store)]
        rows = [
            [
                v["name"],
                v["display_name"],
                v["issuer"],
                v["auth_method"],
                "yes" if v["enabled"] else "no",
                v["linked_accounts"],
                v["email_domains"],
            ]
            for v in views
        ]
        emit(views, as_json, lambda: console.print(table(_HEADERS, rows, title="Providers")))


@providers_app.command("show")
def show(ref: RefArg, as_json: JsonOpt = False) -> None:
    """One provider: its settings, what to register at it, how many accounts are linked."""
    from tessera.manage import providers as rules

    with open_domain(as_json) as ctx, _hinted(as_json):
        view = _shown(ctx, rules.find_provider(ctx.store, ref))
        emit(view, as_json, lambda: _print_provider(view, f"Provider {view['name']}"))


@providers_app.command("update")
def update(
    ref: RefArg,
    name: Annotated[
        str | None, typer.Option(help="A new slug (the redirect URI changes with it).")
    ] = None,
    issuer: Annotated[str | None, typer.Option(help="A new issuer (checked as at add).")] = None,
    client_id: Annotated[str | None, typer.Option(help="A new client id.")] = None,
    auth_method: AuthOpt = None,
    rotate_secret: Annotated[
        bool,
        typer.Option(help=f"Take a new client secret (stdin, ${SECRET_ENV}, or asked)."),
    ] = False,
    client_secret_stdin: SecretStdinOpt = False,
    rotate_key: Annotated[
        bool,
        typer.Option(help="A new key of ours for private_key_jwt (register it at the provider)."),
    ] = False,
    display_name: DisplayOpt = None,
    scope: ScopeOpt = None,
    username_claim: UsernameClaimOpt = None,
    email_claim: EmailClaimOpt = None,
    name_claim: NameClaimOpt = None,
    groups_claim: GroupsClaimOpt = None,
    no_groups_claim: Annotated[bool, typer.Option(help="End the group mapping.")] = False,
    sync_groups: SyncOpt = None,
    jit: JitOpt = None,
    link_existing: LinkOpt = None,
    email_domain: DomainOpt = None,
    no_email_domains: Annotated[
        bool, typer.Option(help="Send no e-mail domain to it any more.")
    ] = False,
    description: DescriptionOpt = None,
    no_check: NoCheckOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Change what is given; the rest stays. --scope and --email-domain replace the lists."""
    from tessera.manage import providers as rules

    secret = _client_secret(client_secret_stdin, rotate_secret, as_json)
    with open_domain(as_json) as ctx, _hinted(as_json), _upstream(ctx) as upstream:
        provider = rules.update_provider(
            ctx.store,
            _setup(ctx),
            ref,
            now=ctx.clock(),
            actor=_actor(ctx),
            client_secret=secret,
            rotate_key=rotate_key,
            upstream=upstream,
            check=not no_check,
            name=name,
            issuer=issuer,
            client_id=client_id,
            auth_method=auth_method,
            display_name=display_name,
            scopes=scope,
            username_claim=username_claim,
            email_claim=email_claim,
            name_claim=name_claim,
            groups_claim="" if no_groups_claim else groups_claim,
            sync_groups=sync_groups,
            jit=jit,
            link_existing=link_existing,
            email_domains=() if no_email_domains else email_domain,
            description=description,
        )
        view = _shown(ctx, provider)
        emit(view, as_json, lambda: _print_provider(view, f"Updated provider {provider.name}"))


def _switch(ref: str, enabled: bool, as_json: bool) -> None:
    from tessera.manage import providers as rules

    change = rules.enable_provider if enabled else rules.disable_provider
    with open_domain(as_json) as ctx, _hinted(as_json):
        provider = change(ctx.store, ref, now=ctx.clock(), actor=_actor(ctx))
        done = "Enabled" if enabled else "Disabled"
        emit(
            _shown(ctx, provider),
            as_json,
            lambda: console.print(f"{done} provider [bold]{provider.name}[/]"),
        )


@providers_app.command("enable")
def enable(ref: RefArg, as_json: JsonOpt = False) -> None:
    """Offer it on the sign-in page again (and send its e-mail domains to it)."""
    _switch(ref, True, as_json)


@providers_app.command("disable")
def disable(ref: RefArg, as_json: JsonOpt = False) -> None:
    """Nobody signs in through it until it is enabled; the links to it stay."""
    _switch(ref, False, as_json)


@providers_app.command("remove")
def remove(ref: RefArg, as_json: JsonOpt = False) -> None:
    """Delete the provider and the links of accounts to it. The users stay, but no longer
    sign in through it (those without a password need a password reset)."""
    from tessera.manage import providers as rules

    with open_domain(as_json) as ctx, _hinted(as_json):
        gone, links = rules.delete_provider(ctx.store, ref, _actor(ctx))
        emit(
            {"deleted": gone.id, "name": gone.name, "links_removed": links},
            as_json,
            lambda: console.print(
                f"Removed provider [bold]{gone.name}[/] and {links} link(s) to it (the users stay)"
            ),
        )


def _print_test(result: dict[str, Any]) -> None:
    check = result["check"]
    rows = [[k, v] for k, v in check.items() if k != "warnings"]
    console.print(table(["found", "value"], rows, title=f"Provider {result['name']}: discovery"))
    for warning in check["warnings"]:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    if not result["enabled"]:
        console.print("[yellow]note:[/] the provider is disabled: users do not see it yet")
    console.print("Try a sign-in through it (valid 10 minutes; nothing is written):")
    console.print(result["try_sign_in_url"], soft_wrap=True, highlight=False)


@providers_app.command("test")
def test(ref: RefArg, as_json: JsonOpt = False) -> None:
    """Fetch its discovery document and keys now and say what was found; print a URL that
    tries a sign-in through it, showing the claims it sends, without signing anyone in."""
    from tessera.manage import providers as rules

    with open_domain(as_json) as ctx, _hinted(as_json), _upstream(ctx) as upstream:
        provider = rules.find_provider(ctx.store, ref)
        result = rules.provider_test(upstream, _setup(ctx), provider, _actor(ctx).name, ctx.clock())
        emit(result, as_json, lambda: _print_test(result))
