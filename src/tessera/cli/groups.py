"""`tessera admin groups …`: groups of users (docs/groups-and-roles.md): create, list, show
(members and roles), update, delete, add-member, remove-member. A change of members reaches
each member's next token; `--revoke-tokens` also revokes what removed members hold for the
resources the group has roles on.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tessera.cli.common import JsonOpt, open_domain
from tessera.cli.output import console, emit, fail, plain, table

# The rules (tessera.manage) are imported in the commands: see tessera/cli/__init__.py.
if TYPE_CHECKING:
    from tessera.context import Context
    from tessera.manage.audit import Actor

__all__ = ["groups_app", "hinted", "print_grants"]

groups_app = typer.Typer(
    help="Groups of users: members get the roles granted to the group (and its name in the "
    "`groups` claim).",
    no_args_is_help=True,
)

GroupArg = Annotated[str, typer.Argument(help="The group's name or id.")]
UsersArg = Annotated[list[str], typer.Argument(help="Usernames or user ids.")]
RevokeOpt = Annotated[
    bool,
    typer.Option(
        "--revoke-tokens",
        help="Also revoke the removed members' tokens for the resources the group has roles "
        "on (otherwise their tokens keep their roles until they expire).",
    ),
]

_HINTS = {
    "group": "`tessera admin groups list` shows the groups (by name or id)",
    "user": "`tessera admin users list` shows the users (by username or id)",
    "resource": "`tessera admin resources list` shows the resources (by name, audience or id)",
    "app": "`tessera admin apps list` shows the apps (by name or client id)",
}


def _actor(ctx: Context) -> Actor:
    from tessera.manage.audit import cli_actor

    return cli_actor(ctx.store, ctx.clock)


@contextmanager
def hinted(as_json: bool) -> Iterator[None]:
    """A missing group, user, resource or app: its message, and where to look the names up."""
    from tessera.manage.errors import NotFoundError

    try:
        yield
    except NotFoundError as exc:
        message = str(exc)
        what = next((k for k in _HINTS if message.startswith(f"no {k} ")), None)
        fail(message, as_json, hint=_HINTS[what] if what else None)


def _member_rows(view: dict[str, Any]) -> list[list[Any]]:
    return [[m["username"], m["display_name"], m["id"]] for m in view["members"]]


def print_grants(grants: list[dict[str, Any]], title: str) -> None:
    if not grants and console.is_terminal:
        console.print(f"{title}: none")
        return
    console.print(
        table(
            ["resource", "role", "granted to", "kind", "granted", "by"],
            [
                [
                    g["resource_name"] or g["resource_id"],
                    g["role"],
                    g["principal_name"] or g["principal_id"],
                    g["principal_kind"],
                    g["granted_at"],
                    g["granted_by"],
                ]
                for g in grants
            ],
            title=title,
        )
    )


def _print_group(view: dict[str, Any]) -> None:
    facts = [
        ["name", view["name"]],
        ["id", view["id"]],
        ["description", view["description"] or "-"],
        ["members", len(view["members"])],
        ["updated", view["updated_at"]],
    ]
    console.print(table(["field", "value"], facts, title=f"Group {view['name']}"))
    console.print(table(["username", "name", "id (sub)"], _member_rows(view), title="Members"))
    print_grants(view["roles"], "Roles granted to the group")


def _shown(ctx: Context, ref: str) -> dict[str, Any]:
    """The group with its members and the roles granted to it."""
    from tessera.manage.roles import group_detail

    return group_detail(ctx.store, ref)


@groups_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="A unique name (compared case-insensitively).")],
    description: Annotated[str, typer.Option(help="What the group is for.")] = "",
    member: Annotated[
        list[str] | None, typer.Option(help="A member: username or id (repeatable).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a group, optionally with its first members."""
    from tessera.manage import groups as rules

    with open_domain(as_json) as ctx, hinted(as_json):
        group = rules.create_group(
            ctx.store,
            name=name,
            description=description,
            members=member or (),
            now=ctx.clock(),
            actor=_actor(ctx),
        )
        view = _shown(ctx, group.id)
        emit(
            view,
            as_json,
            lambda: console.print(
                f"Created group [bold]{group.name}[/] ({group.id}) with "
                f"{len(view['members'])} member(s)"
            ),
        )


@groups_app.command("list")
def list_groups(as_json: JsonOpt = False) -> None:
    """List the groups, by name, with their number of members."""
    from tessera.manage import groups as rules
    from tessera.manage.views import group_view

    with open_domain(as_json) as ctx:
        views = [{**group_view(g), "member_count": n} for g, n in rules.list_groups(ctx.store)]
        emit(
            views,
            as_json,
            lambda: console.print(
                table(
                    ["name", "id", "members", "description"],
                    [[v["name"], v["id"], v["member_count"], v["description"]] for v in views],
                    title="Groups",
                )
            ),
        )


@groups_app.command("show")
def show(group: GroupArg, as_json: JsonOpt = False) -> None:
    """Show a group: its members and the roles granted to it."""
    with open_domain(as_json) as ctx, hinted(as_json):
        view = _shown(ctx, group)
        emit(view, as_json, lambda: _print_group(view))


@groups_app.command("update")
def update(
    group: GroupArg,
    name: Annotated[str | None, typer.Option(help="A new name.")] = None,
    description: Annotated[str | None, typer.Option(help="A new description.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Rename a group or change its description (members: add-member, remove-member)."""
    from tessera.manage import groups as rules

    if name is None and description is None:
        fail("nothing to change", as_json, hint="give --name or --description")
    with open_domain(as_json) as ctx, hinted(as_json):
        changed = rules.update_group(
            ctx.store,
            group,
            name=name,
            description=description,
            now=ctx.clock(),
            actor=_actor(ctx),
        )
        view = _shown(ctx, changed.id)
        emit(view, as_json, lambda: console.print(f"Updated group [bold]{changed.name}[/]"))


@groups_app.command("delete")
def delete(group: GroupArg, revoke_tokens: RevokeOpt = False, as_json: JsonOpt = False) -> None:
    """Delete a group, its memberships and the roles granted to it (the users stay)."""
    from tessera.manage import groups as rules

    with open_domain(as_json) as ctx, hinted(as_json):
        gone = rules.delete_group(ctx.store, group, ctx.clock(), _actor(ctx), revoke=revoke_tokens)
        after = "; members' tokens for its resources revoked" if revoke_tokens else ""
        emit(
            {"deleted": gone.id, "name": gone.name, "tokens_revoked": revoke_tokens},
            as_json,
            lambda: console.print(f"Deleted group [bold]{gone.name}[/]{after}"),
        )


@groups_app.command("add-member")
def add_member(group: GroupArg, user: UsersArg, as_json: JsonOpt = False) -> None:
    """Add users to a group. A member already stays one, and the membership is now an
    administrator's: no provider's group sync ends it."""
    from tessera.manage import groups as rules

    with open_domain(as_json) as ctx, hinted(as_json):
        changed = rules.add_members(ctx.store, group, user, ctx.clock(), _actor(ctx))
        view = _shown(ctx, changed.id)
        emit(
            view,
            as_json,
            lambda: console.print(
                f"[bold]{changed.name}[/] has {len(view['members'])} member(s): "
                + ", ".join(m["username"] for m in view["members"])
            ),
        )


@groups_app.command("remove-member")
def remove_member(
    group: GroupArg, user: UsersArg, revoke_tokens: RevokeOpt = False, as_json: JsonOpt = False
) -> None:
    """Remove users from a group; their next tokens no longer carry its roles."""
    from tessera.manage import groups as rules

    with open_domain(as_json) as ctx, hinted(as_json):
        changed = rules.remove_members(
            ctx.store, group, user, ctx.clock(), _actor(ctx), revoke=revoke_tokens
        )
        view = {**_shown(ctx, changed.id), "tokens_revoked": revoke_tokens}
        after = "; their tokens for its resources revoked" if revoke_tokens else ""
        emit(
            plain(view),
            as_json,
            lambda: console.print(
                f"Removed {len(user)} user(s) from [bold]{changed.name}[/]{after}"
            ),
        )
