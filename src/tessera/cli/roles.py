"""`tessera admin roles …`: a resource's application roles granted to users, groups and apps
(docs/groups-and-roles.md): list, grant, revoke, and the roles a user's next token for a
resource would carry (`show-user`). A resource declares its roles (`tessera admin resources
create/update --role NAME=description`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from tessera.cli.common import JsonOpt, open_domain
from tessera.cli.groups import hinted, print_grants
from tessera.cli.output import console, emit, fail, table

# The rules (tessera.manage) are imported in the commands: see tessera/cli/__init__.py.
if TYPE_CHECKING:
    from tessera.context import Context
    from tessera.manage.audit import Actor
    from tessera.manage.roles import Principal

__all__ = ["roles_app"]

roles_app = typer.Typer(
    help="Application roles of resources, granted to users, groups and apps.",
    no_args_is_help=True,
)

ResourceArg = Annotated[str, typer.Argument(help="The resource: name, audience or id.")]
RoleArg = Annotated[str, typer.Argument(help="A role the resource declares.")]
UserOpt = Annotated[str | None, typer.Option("--user", help="A user: username or id.")]
GroupOpt = Annotated[str | None, typer.Option("--group", help="A group: name or id.")]
AppOpt = Annotated[str | None, typer.Option("--app", help="An app: name or client id.")]


def _actor(ctx: Context) -> Actor:
    from tessera.manage.audit import cli_actor

    return cli_actor(ctx.store, ctx.clock)


def _who(user: str | None, group: str | None, app: str | None, as_json: bool) -> tuple[str, str]:
    """Exactly one of --user, --group and --app: its kind and reference."""
    given = [(k, v) for k, v in (("user", user), ("group", group), ("app", app)) if v is not None]
    if len(given) != 1:
        fail("give exactly one of --user, --group or --app", as_json)
    return given[0]


def _principal(ctx: Context, kind: str, ref: str) -> Principal:
    from tessera.manage import roles as rules

    return rules.find_principal(ctx.store, kind, ref)


@roles_app.command("list")
def list_grants(
    resource: Annotated[
        str | None, typer.Option(help="Only this resource's grants (name, audience or id).")
    ] = None,
    user: UserOpt = None,
    group: GroupOpt = None,
    app: AppOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List role grants, of every resource or one, to everyone or one principal (a user's
    own grants; their groups' roles: show-user)."""
    from tessera.manage import roles as rules

    chosen = (user, group, app)
    with open_domain(as_json) as ctx, hinted(as_json):
        principal = None
        if any(v is not None for v in chosen):
            principal = _principal(ctx, *_who(*chosen, as_json))
        grants = rules.list_role_grants(ctx.store, resource=resource, principal=principal)
        views = rules.grant_views(ctx.store, grants)
        emit(views, as_json, lambda: print_grants(views, "Role grants"))


@roles_app.command("grant")
def grant(
    resource: ResourceArg,
    role: RoleArg,
    user: UserOpt = None,
    group: GroupOpt = None,
    app: AppOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Grant a role to a user, a group (each member) or an app (its client-credentials
    tokens). It reaches the principal's next token for the resource."""
    from tessera.manage import roles as rules

    kind, ref = _who(user, group, app, as_json)
    with open_domain(as_json) as ctx, hinted(as_json):
        principal = _principal(ctx, kind, ref)
        given = rules.grant_role(
            ctx.store,
            resource=resource,
            role=role,
            principal=principal,
            now=ctx.clock(),
            actor=_actor(ctx),
        )
        (view,) = rules.grant_views(ctx.store, [given])
        emit(
            view,
            as_json,
            lambda: console.print(
                f"Granted [bold]{role}[/] on {view['resource_name']} to {kind} "
                f"[bold]{principal.name}[/]"
            ),
        )


@roles_app.command("revoke")
def revoke(
    resource: ResourceArg,
    role: RoleArg,
    user: UserOpt = None,
    group: GroupOpt = None,
    app: AppOpt = None,
    revoke_tokens: Annotated[
        bool,
        typer.Option(
            "--revoke-tokens",
            help="Also revoke what the principal holds for the resource now: a user's (each "
            "member's) grants for it, an app's client-credentials tokens. Otherwise tokens "
            "already issued keep the role until they expire.",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Take a role away from a user, a group or an app."""
    from tessera.manage import roles as rules

    kind, ref = _who(user, group, app, as_json)
    with open_domain(as_json) as ctx, hinted(as_json):
        principal = _principal(ctx, kind, ref)
        done = rules.revoke_role(
            ctx.store,
            resource=resource,
            role=role,
            principal=principal,
            now=ctx.clock(),
            actor=_actor(ctx),
            revoke=revoke_tokens,
        )
        result = rules.revoked_view(ctx.store, done)
        after = ""
        if revoke_tokens:
            after = (
                "; its client-credentials tokens revoked"
                if done.app_tokens_revoked
                else f"; {done.revoked_grants} grant(s) for the resource revoked"
            )
        emit(
            result,
            as_json,
            lambda: console.print(
                f"Revoked [bold]{role}[/] on {result['resource_name']} from {kind} "
                f"[bold]{principal.name}[/]{after}"
            ),
        )


@roles_app.command("show-user")
def show_user(
    user: Annotated[str, typer.Argument(help="Username or id.")],
    resource: Annotated[str, typer.Option(help="The resource: name, audience or id.")],
    as_json: JsonOpt = False,
) -> None:
    """The roles a user's next token for the resource carries: granted to them and to their
    groups."""
    from tessera.domain.model import PrincipalKind
    from tessera.manage import resources as resource_rules
    from tessera.manage import roles as rules

    with open_domain(as_json) as ctx, hinted(as_json):
        principal = _principal(ctx, PrincipalKind.USER, user)
        found = resource_rules.find_resource(ctx.store, resource)
        roles = rules.effective_roles(ctx.store, found.id, principal)
        groups = [g.name for g in ctx.store.groups.groups_of(principal.id)]
        result = {
            "user_id": principal.id,
            "username": principal.name,
            "resource": found.audience,
            "resource_name": found.name,
            "roles": list(roles),
            "groups": groups,
        }
        emit(
            result,
            as_json,
            lambda: console.print(
                table(
                    ["user", "resource", "roles", "groups"],
                    [[principal.name, found.name, list(roles), groups]],
                    title="Effective roles",
                )
            ),
        )
