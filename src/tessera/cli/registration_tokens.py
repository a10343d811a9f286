"""`tessera admin registration-tokens …`: initial access tokens for dynamic client registration
(RFC 7591 §3): create (the token is shown once), list, revoke. Apps register with one at
`<issuer>/oauth2/v1/register` (`Authorization: Bearer <token>`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from tessera.cli.common import JsonOpt, open_domain
from tessera.cli.output import console, emit, table

# The rules (tessera.manage) are imported in the commands: see tessera/cli/__init__.py.
if TYPE_CHECKING:
    from tessera.context import Context
    from tessera.manage.audit import Actor

__all__ = ["registration_tokens_app"]

registration_tokens_app = typer.Typer(
    help="Initial access tokens for dynamic client registration (RFC 7591).",
    no_args_is_help=True,
)


def _actor(ctx: Context) -> Actor:
    from tessera.manage.audit import cli_actor

    return cli_actor(ctx.store, ctx.clock)


def _rows(views: list[dict[str, Any]]) -> list[list[Any]]:
    return [
        [
            v["id"],
            v["state"],
            v["uses"],
            v["max_uses"],
            v["expires_at"],
            " ".join(v["allowed_scopes"]) or "(any)",
            v["description"],
        ]
        for v in views
    ]


_HEADERS = ["id", "state", "uses", "max uses", "expires", "scopes", "description"]


@registration_tokens_app.command("create")
def create(
    expires_in: Annotated[
        int,
        typer.Option(help="Lifetime in seconds (0: until revoked)."),
    ] = 86400,
    max_uses: Annotated[
        int | None,
        typer.Option(help="How many apps it may register (default: without limit)."),
    ] = None,
    description: Annotated[str, typer.Option(help="What the token is for.")] = "",
    allow_scope: Annotated[
        list[str] | None,
        typer.Option(
            help="A scope the apps it registers may have (repeatable; default: any but the "
            "admin API's): openid, profile, email, offline_access or <audience><scope>."
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Mint a token; it is shown once (its `token` field with --json)."""
    from tessera.manage import registration_tokens as rules

    with open_domain(as_json) as ctx:
        now = ctx.clock()
        token, value = rules.mint_token(
            ctx.store,
            ctx.secret_pepper,
            now=now,
            actor=_actor(ctx),
            expires_in=expires_in,
            max_uses=max_uses,
            description=description,
            allowed_scopes=allow_scope or (),
            issuer=ctx.settings.issuer,
        )
        view = rules.token_view(token, now, value)
        emit(view, as_json)


@registration_tokens_app.command("list")
def list_tokens(as_json: JsonOpt = False) -> None:
    """The tokens (never their values), newest first."""
    from tessera.manage import registration_tokens as rules

    with open_domain(as_json) as ctx:
        now = ctx.clock()
        views = [rules.token_view(t, now) for t in rules.list_tokens(ctx.store)]
        emit(views, as_json, lambda: console.print(table(_HEADERS, _rows(views))))


@registration_tokens_app.command("revoke")
def revoke(
    token_id: Annotated[str, typer.Argument(help="The token's id (from `list`).")],
    as_json: JsonOpt = False,
) -> None:
    """Stop a token from registering more apps (the apps it registered stay)."""
    from tessera.manage import registration_tokens as rules

    with open_domain(as_json) as ctx:
        now = ctx.clock()
        token = rules.revoke_token(ctx.store, token_id, now, _actor(ctx))
        emit(rules.token_view(token, now), as_json)
