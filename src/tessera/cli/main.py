"""`tessera`: serve the identity domain, migrate its database, administer it."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tessera import __version__
from tessera.cli.admin import admin_app
from tessera.cli.client import call, login, logout, token
from tessera.cli.common import PRIVATE_UMASK, JsonOpt, open_domain, prepare_data_dir
from tessera.cli.output import console, emit, err_console, handle_errors, table
from tessera.integration.cli import integration_app

# The server side (configuration, store, web app) is imported in the commands: see
# tessera/cli/__init__.py.
if TYPE_CHECKING:
    from tessera.config import Settings

__all__ = ["app"]

app = typer.Typer(
    help="Tessera: a self-hosted OAuth 2.0 / OpenID Connect identity provider.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Inspect the configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(admin_app, name="admin")
app.add_typer(integration_app, name="integration")


@app.callback()
def _private_files() -> None:
    """Files this process creates (databases, keys, credentials) are the owner's alone."""
    os.umask(PRIVATE_UMASK)


@app.command()
def version() -> None:
    """Print the version."""
    console.print(__version__)


@config_app.command("show")
def config_show(as_json: JsonOpt = False) -> None:
    """Print the effective configuration, secrets redacted."""
    from tessera.config import load_settings

    with handle_errors(as_json):
        settings = load_settings()
        data = settings.redacted()
        emit(
            data,
            as_json,
            lambda: console.print(
                table(
                    ["setting", "environment variable", "value"],
                    [
                        [k, f"TESSERA_{k.upper()}", json.dumps(v) if isinstance(v, list) else v]
                        for k, v in data.items()
                    ],
                    title="Effective configuration",
                )
            ),
        )


@app.command()
def migrate(as_json: JsonOpt = False) -> None:
    """Apply database migrations (idempotent; never downgrades)."""
    from tessera.config import load_settings
    from tessera.store.sql import upgrade

    with handle_errors(as_json):
        settings = load_settings()
        prepare_data_dir(settings)
        before, after = upgrade(settings.db_url)
        emit(
            {"from": before, "to": after, "changed": before != after},
            as_json,
            lambda: console.print(
                f"Database at revision [bold]{after}[/]"
                + ("" if before == after else f" (was {before or 'empty'})")
            ),
        )


def _demo_banner(issuer: str, creds: dict[str, Any] | None, path: str) -> None:
    from rich.panel import Panel

    if creds is None:
        console.print(
            Panel.fit(
                f"Tessera is serving [bold]{issuer}[/]\n"
                f"Discovery: {issuer}/.well-known/openid-configuration\n"
                f"Demo credentials (if this domain was bootstrapped by make run): {path}",
                title="Tessera",
            )
        )
        return
    conf, pub = creds["confidential_app"], creds["public_app"]
    console.print(
        Panel.fit(
            f"A demo identity domain is ready at [bold]{issuer}[/]\n\n"
            f"Administrator:  {creds['admin']['username']} / {creds['admin']['password']}\n"
            f"User:           {creds['user']['username']} / {creds['user']['password']}\n"
            f"Resource scope: {creds['resource']['scope']}\n\n"
            f"Confidential app (the seed's client application)\n"
            f"  client_id:     {conf['client_id']}\n"
            f"  client_secret: {conf['client_secret']}\n"
            f"  redirect_uri:  {conf['redirect_uri']}\n"
            f"Public PKCE app (the CLI): client_id {pub['client_id']}\n\n"
            "Try next:\n"
            f"  curl {issuer}/.well-known/openid-configuration\n"
            f"  curl {issuer}/oauth2/v1/keys\n"
            f"  curl -u {conf['client_id']}:<secret> -d grant_type=client_credentials "
            f"{issuer}/oauth2/v1/token\n\n"
            f"These credentials are saved in {path} (mode 0600).",
            title="Tessera demo",
        )
    )


def _saved_credentials(data_dir: Path) -> dict[str, Any] | None:
    try:
        loaded = json.loads((data_dir / "demo-credentials.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.", min=1)] = 1,
    demo: Annotated[
        bool,
        typer.Option(
            "--demo",
            help="Create the demo domain (published passwords) on an empty database; "
            "loopback only. Also TESSERA_DEMO=1.",
        ),
    ] = False,
    with_integration: Annotated[
        int | None,
        typer.Option(
            "--with-integration",
            help="Demo only: also run the integration service on this port, with a sample.",
        ),
    ] = None,
) -> None:
    """Serve the identity domain (applies migrations itself on SQLite)."""
    import uvicorn

    from tessera.config import ConfigError, load_settings
    from tessera.manage.demo import demo_refusal
    from tessera.web.metrics import share_metrics_between_workers

    if "TESSERA_ISSUER" not in os.environ and "TESSERA_ISSUER_FILE" not in os.environ:
        # Unconfigured: the issuer is where we listen (workers inherit the environment).
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104
        os.environ["TESSERA_ISSUER"] = f"http://{shown}:{port}"
    with handle_errors(False), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        settings = load_settings()
        demo = demo or settings.demo
        refusal = demo_refusal(host, settings.issuer, settings.production) if demo else None
        if refusal is not None:
            raise ConfigError(refusal)
        if with_integration is not None and not demo:
            raise ConfigError("--with-integration runs beside the demo domain: add --demo")
        for warning in caught:
            err_console.print(f"[yellow]warning:[/] {warning.message}", highlight=False)
        _prepare_domain(settings, demo, with_integration)
    if workers > 1:
        share_metrics_between_workers()
    uvicorn.run(
        "tessera.web.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        proxy_headers=False,  # forwarded headers are handled with TESSERA_TRUSTED_PROXIES
        server_header=False,
        log_level=settings.log_level,
        # Revocation-feed long-polls answer at once on shutdown; this bounds anything else.
        timeout_graceful_shutdown=3,
    )


def _prepare_domain(settings: Settings, demo: bool, with_integration: int | None) -> None:
    """System objects and signing keys; the demo domain (and its integration service) if
    asked for, or a hint to create the first administrator."""
    from tessera.cli.demo import start_integration_beside
    from tessera.manage.demo import bootstrap_demo
    from tessera.manage.system import ensure_system_objects

    with open_domain(False, create=True) as ctx:
        ensure_system_objects(ctx.store, settings.issuer, ctx.clock())
        created = ctx.keys.ensure()
        if created:
            err_console.print(f"Generated {len(created)} signing keys", highlight=False)
        if demo:
            creds = bootstrap_demo(ctx.store, ctx.secret_pepper, settings.data_dir, ctx.clock())
            path = str(settings.data_dir / "demo-credentials.json")
            _demo_banner(settings.issuer, creds, path)
            if with_integration is not None:
                saved = _saved_credentials(settings.data_dir)
                if saved is None:
                    err_console.print("[yellow]No demo credentials: integration not started[/]")
                else:
                    start_integration_beside(
                        settings.issuer, saved, settings.data_dir, with_integration
                    )
        elif not any(user.is_admin for user in ctx.store.users.list()):
            err_console.print(_FIRST_ADMIN, highlight=False)


_FIRST_ADMIN = (
    "[yellow]This identity domain has no administrator yet.[/] Create the first one, in this "
    "folder (or with the same TESSERA_DATA_DIR / TESSERA_DATABASE_URL):\n"
    "  tessera admin users create <username> --admin\n"
    "(`tessera serve --demo` creates a demo domain instead, on a loopback address only.)"
)


# The client side (tessera.cli.client): sign in, get a token, call an API, sign out.
app.command("login")(login)
app.command("token")(token)
app.command("call")(call)
app.command("logout")(logout)
