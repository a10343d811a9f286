"""`tessera admin …`: users (and their second factors), groups, resources and their roles,
trusted applications, signing keys, the sign-in policy and the upstream sign-in providers
(`tessera.cli.providers`) of one identity domain (the default one, or `--domain NAME`), and the
domains themselves (`tessera.cli.domains`).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tessera.cli.common import JsonOpt, jwks_text, open_domain, read_password, select_domain
from tessera.cli.domains import domains_app
from tessera.cli.groups import groups_app
from tessera.cli.output import console, emit, fail, plain, table
from tessera.cli.providers import providers_app
from tessera.cli.registration_tokens import registration_tokens_app
from tessera.cli.roles import roles_app
from tessera.cli.trusted_issuers import trusted_issuers_app
from tessera.oauth.grant_types import GRANT_TYPES

# The rules (tessera.manage) are imported in the commands: see tessera/cli/__init__.py.
if TYPE_CHECKING:
    from tessera.context import Context
    from tessera.domain.model import Client, ResourceRole
    from tessera.manage.audit import Actor

__all__ = ["admin_app"]

admin_app = typer.Typer(
    help="Administer an identity domain (--domain NAME; default: the default domain).",
    no_args_is_help=True,
)
users_app = typer.Typer(help="Users who sign in with a password.", no_args_is_help=True)
resources_app = typer.Typer(
    help="Resource servers: audiences, scopes and application roles.", no_args_is_help=True
)
apps_app = typer.Typer(help="Trusted applications (OAuth clients).", no_args_is_help=True)
keys_app = typer.Typer(help="Token signing keys.", no_args_is_help=True)
tokens_app = typer.Typer(help="Issued tokens and their revocation.", no_args_is_help=True)
policy_app = typer.Typer(
    help="The domain's sign-in policy: second factors (docs/mfa.md).", no_args_is_help=True
)
admin_app.add_typer(users_app, name="users")
admin_app.add_typer(groups_app, name="groups")
admin_app.add_typer(roles_app, name="roles")
admin_app.add_typer(resources_app, name="resources")
admin_app.add_typer(apps_app, name="apps")
admin_app.add_typer(keys_app, name="keys")
admin_app.add_typer(tokens_app, name="tokens")
admin_app.add_typer(policy_app, name="policy")
admin_app.add_typer(domains_app, name="domains")
admin_app.add_typer(registration_tokens_app, name="registration-tokens")
admin_app.add_typer(trusted_issuers_app, name="trusted-issuers")
admin_app.add_typer(providers_app, name="providers")


@admin_app.callback()
def _choose_domain(
    domain: Annotated[
        str | None,
        typer.Option(
            "--domain",
            envvar="TESSERA_DOMAIN",
            help="The identity domain (name or id) to administer; default: the default domain. "
            "A disabled domain can still be managed here. `domains …` ignores it.",
        ),
    ] = None,
) -> None:
    """Administer an identity domain: its users, groups, resources and roles, apps, keys,
    tokens and policy."""
    select_domain(domain)


def _actor(ctx: Context) -> Actor:
    """Changes made here are audited like the admin API's, with `cli:<OS user>` as the actor,
    in the log of the domain they change."""
    from tessera.manage.audit import cli_actor

    return cli_actor(ctx.store, ctx.clock)


MfaPolicyOpt = Annotated[
    str | None,
    typer.Option(
        help="The app's second-factor policy: off, optional, required, or default (the "
        "domain's). The stricter of the app's and the domain's applies."
    ),
]


def _policy_word(value: str | None) -> str | None:
    """A policy option: "default" (None: the domain's, or the domain's default); the others
    are checked by the rules."""
    word = (value or "").strip().lower()
    return None if word in ("", "default") else word


# --- users -------------------------------------------------------------------------------------


@users_app.command("create")
def users_create(
    username: str,
    email: Annotated[str | None, typer.Option(help="Email address.")] = None,
    name: Annotated[str | None, typer.Option(help="Display name.")] = None,
    admin: Annotated[
        bool, typer.Option("--admin", help="An identity domain administrator.")
    ] = False,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Create a user. The printed id is the `sub` of the user's tokens."""
    from tessera.manage import users as user_rules
    from tessera.manage.views import user_view

    password = read_password(password_stdin, as_json)
    with open_domain(as_json) as ctx:
        user = user_rules.create_user(
            ctx.store,
            username=username,
            password=password,
            email=email,
            display_name=name,
            is_admin=admin,
            now=ctx.clock(),
            actor=_actor(ctx),
        )
        emit(
            user_view(user),
            as_json,
            lambda: console.print(f"Created user [bold]{user.username}[/] (sub {user.id})"),
        )


@users_app.command("list")
def users_list(as_json: JsonOpt = False) -> None:
    """List users."""
    from tessera.manage.views import user_view

    with open_domain(as_json) as ctx:
        users = [user_view(u) for u in ctx.store.users.list()]
        emit(
            users,
            as_json,
            lambda: console.print(
                table(
                    ["username", "id (sub)", "name", "email", "admin", "disabled"],
                    [
                        [
                            u["username"],
                            u["id"],
                            u["display_name"],
                            u["email"],
                            u["is_admin"],
                            u["disabled"],
                        ]
                        for u in users
                    ],
                    title="Users",
                )
            ),
        )


@users_app.command("show")
def users_show(
    user: Annotated[str, typer.Argument(help="Username or id.")], as_json: JsonOpt = False
) -> None:
    """Show a user."""
    from tessera.manage import users as user_rules
    from tessera.manage.views import user_view

    with open_domain(as_json) as ctx:
        emit(user_view(user_rules.find_user(ctx.store, user)), as_json)


@users_app.command("disable")
def users_disable(
    user: Annotated[str, typer.Argument(help="Username or id.")], as_json: JsonOpt = False
) -> None:
    """Disable a user and revoke all of the user's sessions and tokens."""
    from tessera.manage import users as user_rules
    from tessera.manage.views import user_view

    with open_domain(as_json) as ctx:
        found = user_rules.disable_user(ctx.store, user, ctx.clock(), _actor(ctx))
        emit(
            user_view(found),
            as_json,
            lambda: console.print(f"Disabled [bold]{found.username}[/]; tokens revoked"),
        )


@users_app.command("enable")
def users_enable(
    user: Annotated[str, typer.Argument(help="Username or id.")], as_json: JsonOpt = False
) -> None:
    """Enable a disabled user."""
    from tessera.manage import users as user_rules
    from tessera.manage.views import user_view

    with open_domain(as_json) as ctx:
        found = user_rules.enable_user(ctx.store, user, _actor(ctx))
        emit(user_view(found), as_json, lambda: console.print(f"Enabled [bold]{found.username}[/]"))


@users_app.command("set-password")
def users_set_password(
    user: Annotated[str, typer.Argument(help="Username or id.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Set a user's password; the user's sessions and refresh tokens end."""
    from tessera.manage import users as user_rules
    from tessera.manage.views import user_view

    password = read_password(password_stdin, as_json)
    with open_domain(as_json) as ctx:
        found = user_rules.set_password(ctx.store, user, password, ctx.clock(), _actor(ctx))
        emit(
            user_view(found),
            as_json,
            lambda: console.print(
                f"Password of [bold]{found.username}[/] changed; sessions and tokens revoked"
            ),
        )


@users_app.command("delete")
def users_delete(
    user: Annotated[str, typer.Argument(help="Username or id.")], as_json: JsonOpt = False
) -> None:
    """Delete a user: sessions, tokens and consents are revoked first, then the account."""
    from tessera.manage import users as user_rules

    with open_domain(as_json) as ctx:
        gone = user_rules.delete_user(ctx.store, user, ctx.clock(), _actor(ctx))
        emit(
            {"deleted": gone.id, "username": gone.username},
            as_json,
            lambda: console.print(
                f"Deleted user [bold]{gone.username}[/] (sub {gone.id}); tokens revoked"
            ),
        )


# --- second factors ----------------------------------------------------------------------------


def _print_factors(view: dict[str, Any]) -> None:
    app = view["authenticator_app"]
    codes = view["recovery_codes"]
    console.print(
        table(
            ["passkey", "credential id", "created", "last used", "kind", "AAGUID"],
            [
                [
                    p["name"],
                    p["credential_id"],
                    plain(p["created_at"]),
                    plain(p["last_used_at"]),
                    "synced" if p["synced"] else "device-bound",
                    p["aaguid"],
                ]
                for p in view["passkeys"]
            ],
            title=f"Passkeys of {view['username']}",
        )
    )
    state = f"{app['status']} since {app['since']}" if app else "not set up"
    console.print(f"Authenticator app: [bold]{state}[/]")
    console.print(f"Recovery codes:    [bold]{codes['left']}[/] left of {codes['total']}")


@users_app.command("factors")
def users_factors(
    user: Annotated[str, typer.Argument(help="Username or id.")], as_json: JsonOpt = False
) -> None:
    """Show a user's second factors: passkeys, authenticator app, recovery codes left (never
    a key, a secret or a hash)."""
    from tessera.manage import factors as factor_rules
    from tessera.manage import users as user_rules

    with open_domain(as_json) as ctx:
        view = factor_rules.factors_view(ctx.store, user_rules.find_user(ctx.store, user))
        emit(view, as_json, lambda: _print_factors(view))


@users_app.command("reset-factors")
def users_reset_factors(
    user: Annotated[str, typer.Argument(help="Username or id.")],
    only: Annotated[
        str | None,
        typer.Option(help="Remove only these: passkeys, totp or recovery (default: all)."),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Remove a user's second factors (all, or --only one kind) and end the user's sessions.
    Where the policy requires a factor, the user enrolls a new one at the next sign-in."""
    from tessera.manage import factors as factor_rules
    from tessera.manage import users as user_rules

    with open_domain(as_json) as ctx:
        found = user_rules.find_user(ctx.store, user)
        what = factor_rules.checked_kind(only or "all")
        if not yes:
            if not sys.stdin.isatty():
                fail(
                    f"resetting the second factors of {found.username} needs a confirmation",
                    as_json,
                    hint="add --yes to reset them without asking (no terminal to ask in)",
                )
            typer.confirm(
                f"Remove {'every second factor' if what == 'all' else what} of {found.username} "
                "and end their sessions?",
                abort=True,
            )
        done = factor_rules.reset_factors(ctx.store, found.id, ctx.clock(), _actor(ctx), what=what)
        removed = done.view()["removed"]
        emit(
            done.view(),
            as_json,
            lambda: console.print(
                f"Reset the second factors of [bold]{found.username}[/]: "
                f"{removed['passkeys']} passkey(s), {removed['authenticator_app']} authenticator "
                f"app(s), {removed['recovery_codes']} recovery code(s) removed; "
                f"{done.sessions} session(s) ended"
            ),
        )


# --- sign-in policy ----------------------------------------------------------------------------


def _print_policy(view: dict[str, Any], title: str) -> None:
    console.print(
        table(
            ["setting", "value"],
            [
                ["second factor (mfa_policy)", view["mfa_policy"]],
                ["required of every administrator", "yes" if view["admin_mfa_required"] else "no"],
            ],
            title=f"{title} of {view['domain']}",
        )
    )


@policy_app.command("show")
def policy_show(as_json: JsonOpt = False) -> None:
    """Show the domain's second-factor policy."""
    from tessera.manage import factors as factor_rules

    with open_domain(as_json) as ctx:
        view = factor_rules.sign_in_policy(ctx.store)
        emit(view, as_json, lambda: _print_policy(view, "Sign-in policy"))


@policy_app.command("set")
def policy_set(
    mfa: Annotated[
        str | None,
        typer.Option(
            help="off, optional or required (default: back to optional). Apps may be stricter."
        ),
    ] = None,
    require_admin_mfa: Annotated[
        bool | None,
        typer.Option(
            "--require-admin-mfa/--no-require-admin-mfa",
            help="Every administrator must sign in with a second factor.",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Set the domain's second-factor policy; what is not given is kept."""
    from tessera.config import load_settings
    from tessera.manage import factors as factor_rules

    changes: dict[str, Any] = {}
    if mfa is not None:
        changes["mfa_policy"] = _policy_word(mfa)
    if require_admin_mfa is not None:
        changes["admin_mfa_required"] = require_admin_mfa
    with open_domain(as_json) as ctx:
        view = factor_rules.set_sign_in_policy(
            ctx.store,
            base_issuer=load_settings().issuer,
            now=ctx.clock(),
            actor=_actor(ctx),
            **changes,
        )
        emit(view, as_json, lambda: _print_policy(view, "Sign-in policy set"))


# --- resources ---------------------------------------------------------------------------------


RoleOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--role",
        help="An application role it declares, NAME or NAME=description (repeatable; on "
        "update the full new list). Its tokens carry the caller's roles (`roles` claim).",
    ),
]
IncludeGroupsOpt = Annotated[
    bool | None,
    typer.Option(
        "--include-groups/--no-include-groups",
        help="Its access tokens carry the user's group names (`groups` claim).",
    ),
]


def _roles(values: list[str] | None) -> list[ResourceRole] | None:
    """--role NAME[=description] as roles (the rules check the names)."""
    from tessera.domain.model import ResourceRole

    if values is None:
        return None
    roles = []
    for value in values:
        name, _, description = value.partition("=")
        roles.append(ResourceRole(name.strip(), description.strip()))
    return roles


def _print_resource(view: dict[str, Any]) -> None:
    facts = [[k, v] for k, v in plain(view).items() if k not in ("roles", "oracle_scopes")]
    console.print(table(["field", "value"], facts, title=f"Resource {view['name']}"))
    console.print(
        table(
            ["role", "description"],
            [[r["name"], r["description"] or "-"] for r in view["roles"]],
            title="Roles",
        )
    )


@resources_app.command("create")
def resources_create(
    name: Annotated[str, typer.Option(help="A name for people.")],
    audience: Annotated[
        str, typer.Option(help="The primary audience, e.g. https://api.example.test")
    ],
    scope: Annotated[list[str], typer.Option(help="A scope it defines (repeatable).")],
    access_token_ttl: Annotated[
        int | None, typer.Option(help="Cap on access-token lifetime for this resource, seconds.")
    ] = None,
    signing_alg: Annotated[str, typer.Option(help="ES256 or RS256.")] = "ES256",
    role: RoleOpt = None,
    include_groups: IncludeGroupsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Register a resource server, optionally with its application roles."""
    from tessera.manage import resources as resource_rules
    from tessera.manage.views import resource_view

    with open_domain(as_json) as ctx:
        resource = resource_rules.create_resource(
            ctx.store,
            name=name,
            audience=audience,
            scopes=scope,
            access_ttl=access_token_ttl,
            signing_alg=signing_alg,
            roles=_roles(role) or (),
            include_groups=bool(include_groups),
            now=ctx.clock(),
            actor=_actor(ctx),
        )
        view = resource_view(resource)
        emit(view, as_json, lambda: _print_resource(view))


@resources_app.command("list")
def resources_list(as_json: JsonOpt = False) -> None:
    """List resources."""
    from tessera.manage.views import resource_view

    with open_domain(as_json) as ctx:
        items = [resource_view(r) for r in ctx.store.resources.list()]
        emit(
            items,
            as_json,
            lambda: console.print(
                table(
                    ["name", "audience", "scopes", "roles", "groups", "access ttl", "alg"],
                    [
                        [
                            r["name"],
                            r["audience"],
                            r["scopes"],
                            [role["name"] for role in r["roles"]],
                            "yes" if r["include_groups"] else "no",
                            r["access_token_ttl"] or "default",
                            r["signing_alg"],
                        ]
                        for r in items
                    ],
                    title="Resources",
                )
            ),
        )


@resources_app.command("show")
def resources_show(
    resource: Annotated[str, typer.Argument(help="Name, audience or id.")], as_json: JsonOpt = False
) -> None:
    """Show a resource and the roles it declares."""
    from tessera.manage import resources as resource_rules
    from tessera.manage.views import resource_view

    with open_domain(as_json) as ctx:
        view = resource_view(resource_rules.find_resource(ctx.store, resource))
        emit(view, as_json, lambda: _print_resource(view))


@resources_app.command("update")
def resources_update(
    resource: Annotated[str, typer.Argument(help="Name, audience or id.")],
    name: Annotated[str | None, typer.Option(help="A new name.")] = None,
    scope: Annotated[
        list[str] | None,
        typer.Option(help="The full new list of scopes (repeatable); none an app uses may go."),
    ] = None,
    access_token_ttl: Annotated[
        int | None, typer.Option("--access-token-ttl", "--access-ttl", help="Cap, seconds.")
    ] = None,
    no_access_token_ttl: Annotated[
        bool, typer.Option("--no-access-token-ttl", help="Remove the lifetime cap.")
    ] = False,
    role: RoleOpt = None,
    no_roles: Annotated[
        bool, typer.Option("--no-roles", help="Declare no roles (none may still be granted).")
    ] = False,
    include_groups: IncludeGroupsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Edit a resource's name, scopes, access-token lifetime cap, roles or groups claim (not
    its audience). A role still granted cannot be removed: revoke it first."""
    from tessera.manage import resources as resource_rules
    from tessera.manage.views import resource_view

    if no_roles and role:
        fail("--no-roles takes no --role", as_json)
    with open_domain(as_json) as ctx:
        updated = resource_rules.update_resource(
            ctx.store,
            resource,
            actor=_actor(ctx),
            name=name,
            scopes=scope,
            access_ttl=access_token_ttl,
            clear_access_ttl=no_access_token_ttl,
            roles=[] if no_roles else _roles(role),
            include_groups=include_groups,
        )
        view = resource_view(updated)
        emit(view, as_json, lambda: _print_resource(view))


@resources_app.command("delete")
def resources_delete(
    resource: Annotated[str, typer.Argument(help="Name, audience or id.")], as_json: JsonOpt = False
) -> None:
    """Delete a resource no app uses."""
    from tessera.manage import resources as resource_rules

    with open_domain(as_json) as ctx:
        gone = resource_rules.delete_resource(ctx.store, resource, _actor(ctx))
        emit(
            {"deleted": gone.id, "name": gone.name},
            as_json,
            lambda: console.print(f"Deleted resource [bold]{gone.name}[/]"),
        )


# --- apps --------------------------------------------------------------------------------------


# The app's client metadata, under their RFC 7591 names (docs/client-authentication.md).
AuthMethodOpt = Annotated[
    str | None,
    typer.Option(
        help="How the app authenticates: client_secret_basic (the default), client_secret_post, "
        "client_secret_jwt, private_key_jwt (with --jwks or --jwks-uri; no secret), or none "
        "(public apps)."
    ),
]
SigningAlgOpt = Annotated[
    str | None,
    typer.Option(
        help="The one algorithm the app's client assertions may use (default: any of its "
        "method's; `any` goes back to that)."
    ),
]
JwksOpt = Annotated[
    str | None,
    typer.Option(help="The app's public JWK Set for private_key_jwt: JSON text, or @FILE."),
]
JwksUriOpt = Annotated[
    str | None,
    typer.Option(help="Where the app publishes its public keys for private_key_jwt (https)."),
]
ParOpt = Annotated[
    bool | None,
    typer.Option(
        "--require-pushed-authorization-requests/--no-require-pushed-authorization-requests",
        help="The app must push its authorization requests first (PAR, RFC 9126).",
    ),
]
IdTokenAlgOpt = Annotated[
    str | None, typer.Option(help="The app's ID tokens: RS256 (the default) or ES256.")
]
ProfileOpt = Annotated[
    str | None,
    typer.Option(
        help="fapi2: the FAPI 2.0 Security Profile (private_key_jwt, PAR, ES256 ID tokens, "
        "https redirect URIs); none: no profile."
    ),
]
DpopOpt = Annotated[
    bool | None,
    typer.Option(
        "--dpop-bound-access-tokens/--no-dpop-bound-access-tokens",
        help="Every token request of the app must carry a DPoP proof (RFC 9449 §5.2), so its "
        "access tokens are always sender-constrained (on by default under FAPI 2.0).",
    ),
]


ServedOpt = Annotated[
    list[str] | None,
    typer.Option(
        help="A resource (id, audience or name) this app serves (repeatable): it may "
        "introspect that resource's tokens and follow the revocation feed."
    ),
]


def _metadata(
    *,
    as_json: bool,
    method: str | None,
    signing_alg: str | None,
    jwks: str | None,
    jwks_uri: str | None,
    par: bool | None,
    id_token_alg: str | None,
    profile: str | None,
    dpop: bool | None,
) -> dict[str, Any]:
    """The metadata options given, under the rules' keyword names; "none" (profile) and
    "any" (signing algorithm) go back to the default."""
    given: dict[str, Any] = {
        "token_endpoint_auth_method": method,
        "token_endpoint_auth_signing_alg": signing_alg,
        "jwks": jwks_text(jwks, as_json),
        "jwks_uri": jwks_uri,
        "require_pushed_authorization_requests": par,
        "id_token_signed_response_alg": id_token_alg,
        "profile": profile,
        "dpop_bound_access_tokens": dpop,
    }
    given = {key: value for key, value in given.items() if value is not None}
    if given.get("profile", "").lower() == "none":
        given["profile"] = None
    if given.get("token_endpoint_auth_signing_alg", "").lower() == "any":
        given["token_endpoint_auth_signing_alg"] = None
    return given


def _print_secret(client: Client, secret: str | None) -> None:
    console.print(f"Client ID:     [bold]{client.client_id}[/]")
    if secret is not None:
        console.print(f"Client secret: [bold]{secret}[/]")
        console.print("[yellow]Store the secret now: it is not shown again.[/]")
    elif client.auth_method == "private_key_jwt":
        keys = client.jwks_uri or "its registered JWK Set"
        console.print(f"No client secret: the app authenticates with private_key_jwt ({keys}).")
    if client.profile is not None:
        console.print(f"Profile:       [bold]{client.profile}[/]")


@apps_app.command("create")
def apps_create(
    name: Annotated[str, typer.Option(help="A name for people (shown on the consent page).")],
    redirect_uri: Annotated[
        list[str] | None,
        typer.Option(help="A redirect URI (repeatable); exact match, loopback may vary in port."),
    ] = None,
    post_logout_redirect_uri: Annotated[
        list[str] | None, typer.Option(help="Where logout may send the user back (repeatable).")
    ] = None,
    public: Annotated[
        bool, typer.Option("--public", help="A public app (no secret, PKCE required).")
    ] = False,
    grant_type: Annotated[
        list[str] | None,
        typer.Option(help=f"{', '.join(GRANT_TYPES[:-1])} or {GRANT_TYPES[-1]} (repeatable)."),
    ] = None,
    allow_scope: Annotated[
        list[str] | None,
        typer.Option(
            help="An allowed scope: openid, profile, email, offline_access or <audience><scope>."
        ),
    ] = None,
    access_token_ttl: Annotated[int | None, typer.Option(help="Seconds (default 3600).")] = None,
    refresh_token_ttl: Annotated[
        int | None, typer.Option(help="Refresh-token inactivity lifetime, seconds.")
    ] = None,
    resource_server_for: ServedOpt = None,
    mfa_policy: MfaPolicyOpt = None,
    token_endpoint_auth_method: AuthMethodOpt = None,
    token_endpoint_auth_signing_alg: SigningAlgOpt = None,
    jwks: JwksOpt = None,
    jwks_uri: JwksUriOpt = None,
    require_pushed_authorization_requests: ParOpt = None,
    id_token_signed_response_alg: IdTokenAlgOpt = None,
    profile: ProfileOpt = None,
    dpop_bound_access_tokens: DpopOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Register a trusted application. A confidential app's secret is printed once; a
    private_key_jwt app has none (its keys authenticate it)."""
    from tessera.manage import apps as app_rules
    from tessera.manage.views import app_view
    from tessera.oauth.client_jwks import allows_insecure_jwks_uri

    metadata = _metadata(
        as_json=as_json,
        method=token_endpoint_auth_method,
        signing_alg=token_endpoint_auth_signing_alg,
        jwks=jwks,
        jwks_uri=jwks_uri,
        par=require_pushed_authorization_requests,
        id_token_alg=id_token_signed_response_alg,
        profile=profile,
        dpop=dpop_bound_access_tokens,
    )
    with open_domain(as_json) as ctx:
        client, secret = app_rules.create_app(
            ctx.store,
            ctx.secret_pepper,
            name=name,
            redirect_uris=redirect_uri,
            post_logout_redirect_uris=post_logout_redirect_uri,
            public=public,
            grant_types=grant_type,
            allowed_scopes=allow_scope,
            access_ttl=access_token_ttl,
            refresh_ttl=refresh_token_ttl,
            resource_server_for=resource_server_for,
            mfa_policy=_policy_word(mfa_policy),
            now=ctx.clock(),
            actor=_actor(ctx),
            allow_insecure_jwks_uri=allows_insecure_jwks_uri(ctx.settings.issuer),
            **metadata,
        )
        emit(app_view(client, secret), as_json, lambda: _print_secret(client, secret))


@apps_app.command("set-resource-server")
def apps_set_resource_server(
    app: Annotated[str, typer.Argument(help="Client id or name.")],
    resource: Annotated[
        list[str] | None,
        typer.Option(help="A resource (id, audience or name) the app serves (repeatable)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Mark the app as the resource server of these resources; without --resource, of none.

    A resource server may introspect its resources' tokens and follow the revocation feed.
    """
    from tessera.manage import apps as app_rules
    from tessera.manage.views import app_view

    with open_domain(as_json) as ctx:
        client = app_rules.set_resource_server_for(ctx.store, app, resource or [], _actor(ctx))
        served = ", ".join(client.resource_server_for) or "no resource"
        emit(
            app_view(client),
            as_json,
            lambda: console.print(f"[bold]{client.name}[/] is the resource server of {served}"),
        )


@apps_app.command("token-exchange")
def apps_token_exchange(
    app: Annotated[str, typer.Argument(help="Client id or name.")],
    audience: Annotated[
        list[str] | None,
        typer.Option(
            help="A resource (id, audience or name) the app may exchange users' access tokens "
            "for (repeatable; the full new list)."
        ),
    ] = None,
    impersonation: Annotated[
        bool | None,
        typer.Option(
            "--impersonation/--no-impersonation",
            help="Its exchanged tokens carry no `act` (RFC 8693 §4.1). Off by default: "
            "delegation, the app named in `act`.",
        ),
    ] = None,
    off: Annotated[
        bool, typer.Option("--off", help="The app may no longer exchange tokens.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Let the app exchange users' access tokens for tokens of these resources (RFC 8693
    token exchange: it must be a confidential app, and the token's app or its resource
    server). Giving resources allows the grant type; --off removes it."""
    from tessera.manage import apps as app_rules
    from tessera.manage.views import app_view

    if off and audience:
        raise typer.BadParameter("--off takes no --audience")
    with open_domain(as_json) as ctx:
        client = app_rules.set_token_exchange(
            ctx.store,
            app,
            _actor(ctx),
            audiences=[] if off else audience,
            impersonation=impersonation,
        )
        targets = ", ".join(client.token_exchange_audiences) or "no resource"
        how = "impersonation" if client.token_exchange_impersonation else "delegation"
        emit(
            app_view(client),
            as_json,
            lambda: console.print(
                f"[bold]{client.name}[/] may exchange tokens for {targets} ({how})"
            ),
        )


@apps_app.command("list")
def apps_list(as_json: JsonOpt = False) -> None:
    """List trusted applications."""
    from tessera.manage.views import app_view

    with open_domain(as_json) as ctx:
        items = [app_view(c) for c in ctx.store.clients.list()]
        emit(
            items,
            as_json,
            lambda: console.print(
                table(
                    ["name", "client id", "type", "grant types", "redirect URIs"],
                    [
                        [a["name"], a["client_id"], a["type"], a["grant_types"], a["redirect_uris"]]
                        for a in items
                    ],
                    title="Trusted applications",
                )
            ),
        )


@apps_app.command("show")
def apps_show(
    app: Annotated[str, typer.Argument(help="Client id or name.")], as_json: JsonOpt = False
) -> None:
    """Show a trusted application (never its secret)."""
    from tessera.manage import apps as app_rules
    from tessera.manage.views import app_view

    with open_domain(as_json) as ctx:
        emit(app_view(app_rules.find_app(ctx.store, app)), as_json)


@apps_app.command("update")
def apps_update(
    app: Annotated[str, typer.Argument(help="Client id or name.")],
    name: Annotated[str | None, typer.Option(help="A new name.")] = None,
    redirect_uri: Annotated[
        list[str] | None, typer.Option(help="The full new list of redirect URIs (repeatable).")
    ] = None,
    post_logout_redirect_uri: Annotated[
        list[str] | None,
        typer.Option(help="The full new list of post-logout redirect URIs (repeatable)."),
    ] = None,
    grant_type: Annotated[
        list[str] | None, typer.Option(help="The full new list of grant types (repeatable).")
    ] = None,
    allow_scope: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-scope", "--scope", help="The full new list of allowed scopes (repeatable)."
        ),
    ] = None,
    access_token_ttl: Annotated[
        int | None, typer.Option("--access-token-ttl", "--access-ttl", help="Seconds.")
    ] = None,
    refresh_token_ttl: Annotated[
        int | None, typer.Option("--refresh-token-ttl", "--refresh-ttl", help="Seconds.")
    ] = None,
    mfa_policy: MfaPolicyOpt = None,
    token_endpoint_auth_method: AuthMethodOpt = None,
    token_endpoint_auth_signing_alg: SigningAlgOpt = None,
    jwks: JwksOpt = None,
    jwks_uri: JwksUriOpt = None,
    require_pushed_authorization_requests: ParOpt = None,
    id_token_signed_response_alg: IdTokenAlgOpt = None,
    profile: ProfileOpt = None,
    dpop_bound_access_tokens: DpopOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Edit a trusted application with the rules of `create`; options left out are kept.

    A scope or grant type removed is refused to new requests; tokens already issued keep
    working until they expire (use the admin API's revoke-tokens to end them now). Switching
    to a secret method the app has no such secret for: `rotate-secret
    --token-endpoint-auth-method METHOD`."""
    from tessera.manage import apps as app_rules
    from tessera.manage.views import app_view
    from tessera.oauth.client_jwks import allows_insecure_jwks_uri

    given: dict[str, Any] = _metadata(
        as_json=as_json,
        method=token_endpoint_auth_method,
        signing_alg=token_endpoint_auth_signing_alg,
        jwks=jwks,
        jwks_uri=jwks_uri,
        par=require_pushed_authorization_requests,
        id_token_alg=id_token_signed_response_alg,
        profile=profile,
        dpop=dpop_bound_access_tokens,
    )
    if access_token_ttl is not None:
        given["access_ttl"] = access_token_ttl
    if refresh_token_ttl is not None:
        given["refresh_ttl"] = refresh_token_ttl
    if mfa_policy is not None:
        given["mfa_policy"] = _policy_word(mfa_policy)
    with open_domain(as_json) as ctx:
        updated = app_rules.update_app(
            ctx.store,
            app,
            actor=_actor(ctx),
            name=name,
            redirect_uris=redirect_uri,
            post_logout_redirect_uris=post_logout_redirect_uri,
            grant_types=grant_type,
            allowed_scopes=allow_scope,
            allow_insecure_jwks_uri=allows_insecure_jwks_uri(ctx.settings.issuer),
            **given,
        )
        emit(app_view(updated), as_json)


@apps_app.command("delete")
def apps_delete(
    app: Annotated[str, typer.Argument(help="Client id or name.")], as_json: JsonOpt = False
) -> None:
    """Delete a trusted application and revoke its tokens."""
    from tessera.manage import apps as app_rules

    with open_domain(as_json) as ctx:
        gone = app_rules.delete_app(ctx.store, app, ctx.clock(), _actor(ctx))
        emit(
            {"deleted": gone.client_id, "name": gone.name},
            as_json,
            lambda: console.print(f"Deleted app [bold]{gone.name}[/]; its tokens are revoked"),
        )


@apps_app.command("rotate-secret")
def apps_rotate_secret(
    app: Annotated[str, typer.Argument(help="Client id or name.")],
    grace: Annotated[int, typer.Option(help="Seconds the current secret keeps working.")] = 3600,
    token_endpoint_auth_method: Annotated[
        str | None,
        typer.Option(
            help="Switch the app to this secret method with the new secret: "
            "client_secret_basic, client_secret_post or client_secret_jwt (whose secret is "
            "kept sealed, as its assertions need it)."
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Issue a new secret; the current one keeps working for --grace seconds (under the
    method it was made for)."""
    from tessera.manage import apps as app_rules
    from tessera.manage.views import app_view

    with open_domain(as_json) as ctx:
        client, secret = app_rules.rotate_secret(
            ctx.store,
            ctx.secret_pepper,
            app,
            grace,
            ctx.clock(),
            _actor(ctx),
            token_endpoint_auth_method=token_endpoint_auth_method,
        )
        emit(app_view(client, secret), as_json, lambda: _print_secret(client, secret))


# --- keys --------------------------------------------------------------------------------------


@keys_app.command("list")
def keys_list(as_json: JsonOpt = False) -> None:
    """List signing keys (next, active, retired)."""
    from tessera.manage.views import key_view

    with open_domain(as_json) as ctx:
        ctx.keys.ensure()
        items = [key_view(k) for k in ctx.store.keys.list()]
        emit(
            items,
            as_json,
            lambda: console.print(
                table(
                    ["kid", "alg", "state", "created", "activated", "published until"],
                    [
                        [
                            k["kid"],
                            k["alg"],
                            k["state"],
                            plain(k["created_at"]),
                            plain(k["activated_at"]),
                            plain(k["retire_after"]),
                        ]
                        for k in items
                    ],
                    title="Signing keys",
                )
            ),
        )


@keys_app.command("rotate")
def keys_rotate(
    alg: Annotated[str, typer.Option(help="ES256, RS256 or all.")] = "all",
    as_json: JsonOpt = False,
) -> None:
    """Promote the published next key, retire the current one, publish a new next key."""
    from tessera.manage import keys as key_rules

    with open_domain(as_json) as ctx:
        rotated = key_rules.rotate_keys(ctx.keys, alg, _actor(ctx))
        result = [{"alg": a.alg, "active": a.kid, "next": n.kid} for a, n in rotated]
        emit(
            result,
            as_json,
            lambda: console.print(
                table(
                    ["alg", "now signing", "published next"],
                    [[r["alg"], r["active"], r["next"]] for r in result],
                    title="Rotated",
                )
            ),
        )


# --- tokens ------------------------------------------------------------------------------------


@tokens_app.command("revoke")
def tokens_revoke(
    user: Annotated[str, typer.Option(help="Revoke every token of this user (name or id).")],
    as_json: JsonOpt = False,
) -> None:
    """Revoke all tokens of a user: sessions end, refresh tokens die, access tokens are refused."""
    from tessera.manage import users as user_rules

    with open_domain(as_json) as ctx:
        found = user_rules.find_user(ctx.store, user)
        summary = user_rules.revoke_user_tokens(ctx.store, found.id, ctx.clock(), _actor(ctx))
        emit(
            {"user": found.username, "sub": found.id, **plain(summary)},
            as_json,
            lambda: console.print(
                f"Revoked every token of [bold]{found.username}[/]: {summary.sessions} "
                f"session(s) ended, {summary.grants} grant(s) revoked"
            ),
        )


@admin_app.command("purge")
def purge(as_json: JsonOpt = False) -> None:
    """Delete expired codes, refresh tokens, revocation events, sessions, login failures and
    retired signing keys."""
    from tessera.manage.housekeeping import purge_expired

    with open_domain(as_json) as ctx:
        report = purge_expired(ctx.store, ctx.clock(), ctx.settings.login_failure_window)
        keys = ctx.keys.purge()
        data = {**plain(report), "signing_keys": keys}
        emit(
            data,
            as_json,
            lambda: console.print(
                table(
                    ["what", "deleted"],
                    [[k.replace("_", " "), v] for k, v in data.items()],
                    title="Purged expired rows",
                )
            ),
        )
