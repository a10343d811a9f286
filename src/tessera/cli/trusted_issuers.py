"""`tessera admin trusted-issuers …`: partner systems whose signed JWTs get the domain's apps
tokens for the domain's users (the JWT bearer grant, RFC 7523 §2.1): create, list, show,
update, delete. An app presents an assertion at `<issuer>/oauth2/v1/token` with
`grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<JWT>`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from tessera.cli.common import JsonOpt, jwks_text, open_domain
from tessera.cli.output import console, emit, table

# The rules (tessera.manage) are imported in the commands: see tessera/cli/__init__.py.
if TYPE_CHECKING:
    from tessera.context import Context
    from tessera.manage.audit import Actor

__all__ = ["trusted_issuers_app"]

trusted_issuers_app = typer.Typer(
    help="Trusted assertion issuers for the JWT bearer grant (RFC 7523).",
    no_args_is_help=True,
)

RefArg = Annotated[str, typer.Argument(help="The trusted issuer's id or its issuer.")]
JwksOpt = Annotated[
    str | None,
    typer.Option(help="The issuer's public JWK Set: JSON text, or @FILE."),
]
JwksUriOpt = Annotated[
    str | None, typer.Option(help="Where the issuer publishes its public keys (https).")
]
AppOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--allowed-app",
        help="The client id of an app that may present this issuer's assertions (repeatable).",
    ),
]
ScopeOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--allowed-scope",
        help="A scope its tokens may carry (repeatable; default: what the app may ask for): "
        "openid, profile, email or <audience><scope>.",
    ),
]
DescriptionOpt = Annotated[str | None, typer.Option(help="Who the partner is.")]

_HEADERS = ["id", "issuer", "keys", "apps", "scopes"]


def _actor(ctx: Context) -> Actor:
    from tessera.manage.audit import cli_actor

    return cli_actor(ctx.store, ctx.clock)


def _acting(ctx: Context) -> dict[str, Any]:
    """What creating and updating need besides the values: the time, the actor, the domain's
    issuer and whether it is a development node (http loopback `jwks_uri`s)."""
    from tessera.oauth.client_jwks import allows_insecure_jwks_uri

    return {
        "now": ctx.clock(),
        "actor": _actor(ctx),
        "domain_issuer": ctx.settings.issuer,
        "allow_insecure_jwks_uri": allows_insecure_jwks_uri(ctx.settings.issuer),
    }


def _rows(views: list[dict[str, Any]]) -> list[list[Any]]:
    return [
        [
            v["id"],
            v["issuer"],
            v["jwks_uri"] or "(inline jwks)",
            " ".join(v["allowed_apps"]) or "(none)",
            " ".join(v["allowed_scopes"]) or "(the app's)",
        ]
        for v in views
    ]


@trusted_issuers_app.command("create")
def create(
    issuer: Annotated[str, typer.Option(help="The assertions' iss (a URL or a string).")],
    jwks: JwksOpt = None,
    jwks_uri: JwksUriOpt = None,
    allowed_app: AppOpt = None,
    allowed_scope: ScopeOpt = None,
    description: Annotated[str, typer.Option(help="Who the partner is.")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Trust a partner's assertions for users of this domain (give --jwks or --jwks-uri)."""
    from tessera.manage import trusted_issuers as rules

    keys = jwks_text(jwks, as_json)
    with open_domain(as_json) as ctx:
        trusted = rules.create_issuer(
            ctx.store,
            **_acting(ctx),
            issuer=issuer,
            jwks=keys,
            jwks_uri=jwks_uri,
            allowed_apps=allowed_app or (),
            allowed_scopes=allowed_scope or (),
            description=description,
        )
        emit(rules.issuer_view(trusted), as_json)


@trusted_issuers_app.command("list")
def list_issuers(as_json: JsonOpt = False) -> None:
    """The trusted issuers, by issuer."""
    from tessera.manage import trusted_issuers as rules

    with open_domain(as_json) as ctx:
        views = [rules.issuer_view(i) for i in rules.list_issuers(ctx.store)]
        emit(views, as_json, lambda: console.print(table(_HEADERS, _rows(views))))


@trusted_issuers_app.command("show")
def show(ref: RefArg, as_json: JsonOpt = False) -> None:
    """One trusted issuer, with its keys."""
    from tessera.manage import trusted_issuers as rules

    with open_domain(as_json) as ctx:
        emit(rules.issuer_view(rules.find_issuer(ctx.store, ref)), as_json)


@trusted_issuers_app.command("update")
def update(
    ref: RefArg,
    issuer: Annotated[str | None, typer.Option(help="A new iss.")] = None,
    jwks: JwksOpt = None,
    jwks_uri: JwksUriOpt = None,
    allowed_app: AppOpt = None,
    allowed_scope: ScopeOpt = None,
    no_allowed_apps: Annotated[bool, typer.Option(help="Drop every allowed app.")] = False,
    no_allowed_scopes: Annotated[
        bool, typer.Option(help="Drop the scope list (the app's scopes apply).")
    ] = False,
    description: DescriptionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Change what is given: --jwks or --jwks-uri replaces the keys, --allowed-app the app
    list, --allowed-scope the scope list."""
    from tessera.manage import trusted_issuers as rules

    keys = jwks_text(jwks, as_json)
    with open_domain(as_json) as ctx:
        trusted = rules.update_issuer(
            ctx.store,
            ref,
            **_acting(ctx),
            issuer=issuer,
            jwks=keys,
            jwks_uri=jwks_uri,
            allowed_apps=() if no_allowed_apps else allowed_app,
            allowed_scopes=() if no_allowed_scopes else allowed_scope,
            description=description,
        )
        emit(rules.issuer_view(trusted), as_json)


@trusted_issuers_app.command("delete")
def delete(ref: RefArg, as_json: JsonOpt = False) -> None:
    """Stop trusting the issuer (tokens it got stay until they expire or are revoked)."""
    from tessera.manage import trusted_issuers as rules

    with open_domain(as_json) as ctx:
        gone = rules.delete_issuer(ctx.store, ref, _actor(ctx))
        emit(
            {"deleted": gone.id, "issuer": gone.issuer},
            as_json,
            lambda: console.print(f"No longer trusted: [bold]{gone.issuer}[/]"),
        )
