"""`tessera admin domains …`: operators create, list, show, change, disable, enable and delete
identity domains (docs/domains.md). These commands always act from the default domain, where
the operators are and where their changes are audited; `--domain` does not apply to them.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tessera.cli.common import JsonOpt, open_default_domain, read_password
from tessera.cli.output import console, emit, fail, table

# The rules (tessera.manage) are imported in the commands: see tessera/cli/__init__.py.
if TYPE_CHECKING:
    from tessera.context import Context
    from tessera.domain.identity_domains import IdentityDomain
    from tessera.manage.audit import Actor

__all__ = ["domains_app"]

domains_app = typer.Typer(
    help="Identity domains (tenants): operators' commands, run against the default domain.",
    no_args_is_help=True,
)

RefArg = Annotated[str, typer.Argument(help="The domain's name or id.")]
SettingOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--setting",
        help="A domain setting as key=value (repeatable), e.g. access_token_ttl=600 or "
        "password_min_length=14; key= (empty) goes back to the node's setting.",
    ),
]


def _actor(ctx: Context) -> Actor:
    """Audited in the default domain's log with `cli:<OS user>` as the actor."""
    from tessera.manage.audit import cli_actor

    return cli_actor(ctx.store, ctx.clock)


def _settings(pairs: list[str] | None) -> dict[str, Any]:
    """`key=value` pairs as settings; the values are checked by `DomainSettings`."""
    from tessera.manage.errors import InvalidInput

    settings: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key:
            raise InvalidInput(f"--setting {pair!r}: give key=value, e.g. access_token_ttl=600")
        if value.lower() in ("", "none", "default"):
            settings[key] = None
            continue
        # Numbers as numbers; words (mfa_policy=required, admin_mfa_required=true) as given:
        # `DomainSettings` checks both.
        settings[key] = int(value) if value.isascii() and value.isdigit() else value
    return settings


def _view(ctx: Context, domain: IdentityDomain) -> dict[str, Any]:
    from tessera.manage import domains as domain_rules

    return domain_rules.domain_view(domain, ctx.settings.issuer)


def _print_domain(view: dict[str, Any], title: str | None = None) -> None:
    rows = [[k, v] for k, v in view.items() if k not in ("settings", "admin")]
    rows.append(["settings", [f"{k}={v}" for k, v in view["settings"].items()] or None])
    if view.get("admin"):
        rows.append(["first admin", f"{view['admin']['username']} (sub {view['admin']['id']})"])
    console.print(table(["field", "value"], rows, title=title))


@domains_app.command("create")
def domains_create(
    name: Annotated[str, typer.Argument(help="The name: a DNS label, the path /domains/<name>.")],
    display_name: Annotated[
        str | None, typer.Option(help="What sign-in pages show (default: the name).")
    ] = None,
    host: Annotated[
        str | None, typer.Option(help="A host name of its own: issuer https://<host>.")
    ] = None,
    admin: Annotated[
        str | None, typer.Option("--admin", help="Username of the domain's first administrator.")
    ] = None,
    admin_email: Annotated[
        str | None, typer.Option(help="The first administrator's email address.")
    ] = None,
    admin_name: Annotated[
        str | None, typer.Option(help="The first administrator's display name.")
    ] = None,
    admin_password_stdin: Annotated[
        bool,
        typer.Option(
            "--admin-password-stdin", help="Read the administrator's password from stdin."
        ),
    ] = False,
    setting: SettingOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a domain with its signing keys, admin API and console app (one transaction),
    and optionally its first administrator (--admin)."""
    from tessera.context import domain_signing_key
    from tessera.manage import domains as domain_rules

    if admin is None and (admin_email or admin_name or admin_password_stdin):
        fail("--admin-email, --admin-name and --admin-password-stdin need --admin", as_json)
    first_admin = None
    if admin is not None:
        password = read_password(admin_password_stdin, as_json, "--admin-password-stdin")
        first_admin = domain_rules.NewAdmin(admin, password, admin_email, admin_name)
    with open_default_domain(as_json) as ctx:
        settings = ctx.settings
        created = domain_rules.create_domain(
            ctx.store,
            name=name,
            base_issuer=settings.issuer,
            signing_key_for=lambda domain_id: domain_signing_key(settings, domain_id),
            now=ctx.clock(),
            actor=_actor(ctx),
            display_name=display_name,
            host=host,
            settings=_settings(setting),
            admin=first_admin,
        )
        view = domain_rules.created_view(created, settings.issuer)
        emit(view, as_json, lambda: _print_domain(view, f"Created domain {created.domain.name}"))


@domains_app.command("list")
def domains_list(
    after: Annotated[
        str | None, typer.Option(help="Start after this name (the previous page's next_after).")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many (1 to 1000).")] = 100,
    as_json: JsonOpt = False,
) -> None:
    """List domains in name order, a page at a time: {"domains": [...], "next_after": name}."""
    from tessera.manage import domains as domain_rules

    with open_default_domain(as_json) as ctx:
        page = domain_rules.domain_page(ctx.store, ctx.settings.issuer, after=after, limit=limit)

        def render() -> None:
            columns = ("display_name", "issuer", "enabled", "created_at", "id")
            rows = [
                [d["name"] + (" (default)" if d["default"] else ""), *(d[c] for c in columns)]
                for d in page["domains"]
            ]
            headings = ["name", "display name", "issuer", "enabled", "created", "id"]
            console.print(table(headings, rows, title="Identity domains"))
            if page["next_after"] is not None:
                console.print(f"More: tessera admin domains list --after {page['next_after']}")

        emit(page, as_json, render)


@domains_app.command("show")
def domains_show(ref: RefArg, as_json: JsonOpt = False) -> None:
    """Show a domain: its issuer, URLs, state and settings."""
    from tessera.manage import domains as domain_rules

    with open_default_domain(as_json) as ctx:
        view = _view(ctx, domain_rules.find_domain(ctx.store, ref))
        emit(view, as_json, lambda: _print_domain(view))


@domains_app.command("update")
def domains_update(
    ref: RefArg,
    display_name: Annotated[str | None, typer.Option(help="A new display name.")] = None,
    host: Annotated[
        str | None,
        typer.Option(help="Claim this host name (the issuer becomes https://<host>)."),
    ] = None,
    no_host: Annotated[
        bool,
        typer.Option("--no-host", help="Release the host: served under /domains/<name> again."),
    ] = False,
    setting: SettingOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Change a domain's display name, host or settings. A new host is a new issuer: the
    tokens issued before are refused from then on."""
    from tessera.manage import domains as domain_rules

    if host is not None and no_host:
        fail("give --host or --no-host, not both", as_json)
    with open_default_domain(as_json) as ctx:
        updated = domain_rules.update_domain(
            ctx.store,
            ref,
            base_issuer=ctx.settings.issuer,
            actor=_actor(ctx),
            now=ctx.clock(),
            display_name=display_name,
            host="" if no_host else host,
            settings=_settings(setting),
        )
        view = _view(ctx, updated)
        emit(view, as_json, lambda: _print_domain(view, f"Updated domain {updated.name}"))


def _set_enabled(ref: str, enabled: bool, as_json: bool) -> None:
    from tessera.manage import domains as domain_rules

    with open_default_domain(as_json) as ctx:
        domain = domain_rules.set_domain_enabled(ctx.store, ref, enabled, ctx.clock(), _actor(ctx))
        state = "enabled" if enabled else "disabled: its endpoints refuse every request"
        emit(
            _view(ctx, domain),
            as_json,
            lambda: console.print(f"Domain [bold]{domain.name}[/] is {state}"),
        )


@domains_app.command("disable")
def domains_disable(ref: RefArg, as_json: JsonOpt = False) -> None:
    """Disable a domain: every endpoint of it answers `domain_disabled` (its data is kept,
    and `tessera admin --domain NAME …` still manages it)."""
    _set_enabled(ref, False, as_json)


@domains_app.command("enable")
def domains_enable(ref: RefArg, as_json: JsonOpt = False) -> None:
    """Enable a disabled domain."""
    _set_enabled(ref, True, as_json)


@domains_app.command("delete")
def domains_delete(
    ref: RefArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Delete a domain and all of its data (users, apps, keys, tokens, audit log): it is
    disabled first, so everything it issued is refused, then its rows are deleted in batches.
    Interrupted, run it again: it goes on where it stopped."""
    from tessera.domain.identity_domains import domain_issuer
    from tessera.manage import domains as domain_rules

    with open_default_domain(as_json) as ctx:
        domain = domain_rules.find_domain(ctx.store, ref)
        if not yes:
            if not sys.stdin.isatty():
                fail(
                    f"deleting the domain {domain.name} needs a confirmation",
                    as_json,
                    hint="add --yes to delete it without asking (no terminal to ask in)",
                )
            typer.confirm(
                f"Delete the domain {domain.name} ({domain.display_name}, issuer "
                f"{domain_issuer(ctx.settings.issuer, domain)}) and ALL of its data? "
                "This cannot be undone",
                abort=True,
            )
        if as_json:
            gone = domain_rules.delete_domain(ctx.store, domain.id, ctx.clock(), _actor(ctx))
        else:
            with console.status(f"Deleting the domain {domain.name} and its data…"):
                gone = domain_rules.delete_domain(ctx.store, domain.id, ctx.clock(), _actor(ctx))
        emit(
            {"deleted": gone.domain.name, "id": gone.domain.id, "rows": gone.rows},
            as_json,
            lambda: console.print(
                f"Deleted the domain [bold]{gone.domain.name}[/] and {gone.rows} rows of its data"
            ),
        )
