"""`tessera integration …`: serve the integration service, deploy integration documents.

Imports nothing of the identity domain: the service is configured by `TESSERA_INTEGRATION_…`
variables and talks to the identity domain over HTTP only.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

# httpx and the service are imported in the commands: this module is part of the `tessera`
# command's start-up (see tessera/cli/__init__.py).
if TYPE_CHECKING:
    import httpx

    from tessera.client.session import Session

__all__ = ["integration_app"]

integration_app = typer.Typer(
    help="The integration service: a resource server protected by the identity domain.",
    no_args_is_help=True,
)

_API = "/ic/api/integration/v1"


def _fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@integration_app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8001,
) -> None:
    """Serve the integration service (applies its migrations at startup)."""
    import uvicorn

    from tessera.integration.settings import IntegrationConfigError, load_settings

    try:
        settings = load_settings()
    except IntegrationConfigError as exc:
        _fail(str(exc))
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per outbound call and poll
    uvicorn.run(
        "tessera.integration.app:create_app",
        factory=True,
        host=host,
        port=port,
        access_log=False,
        server_header=False,
        proxy_headers=False,
        log_level=settings.log_level,
    )


def _media_type(path: Path) -> str:
    return "application/yaml" if path.suffix.lower() in (".yaml", ".yml") else "application/json"


def _check(response: httpx.Response, action: str) -> dict[str, Any]:
    if response.is_success:
        body = response.json() if response.content else {}
        return body if isinstance(body, dict) else {}
    try:
        data = response.json()
        reason = data.get("detail") or data.get("error_description") or data.get("error")
    except ValueError:
        reason = response.text[:200]
    reason = f"{reason}{_step_up_hint(response)}"
    _fail(
        f"{action}: HTTP {response.status_code}: {reason}", 1 if response.status_code >= 500 else 2
    )


def _step_up_hint(response: httpx.Response) -> str:
    """For an RFC 9470 challenge (the service requires a level to manage): how to get it."""
    from tessera.client.session import login_command
    from tessera.client.stepup import step_up_challenge

    challenge = step_up_challenge(response)
    if challenge is None:
        return ""
    return f" (sign in again: {login_command(None, None, 'default', challenge)}, then retry)"


@integration_app.command()
def deploy(
    file: Annotated[Path, typer.Argument(help="An integration document (.json, .yaml).")],
    token: Annotated[
        str | None,
        typer.Option(help="An access token with urn:tessera:integration:manage."),
    ] = None,
    token_stdin: Annotated[
        bool, typer.Option("--token-stdin", help="Read the access token from stdin.")
    ] = False,
    profile: Annotated[
        str,
        typer.Option(
            "--profile", "-p", help="Without a token: the `tessera login` profile to use."
        ),
    ] = "default",
    issuer: Annotated[
        str | None, typer.Option(help="Without a token: the login of this issuer.")
    ] = None,
    client_id: Annotated[
        str | None, typer.Option(help="Without a token: the login of this app.")
    ] = None,
    activate: Annotated[bool, typer.Option("--activate", help="Activate it afterwards.")] = False,
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace an existing version (deactivates it).")
    ] = False,
    url: Annotated[str, typer.Option(help="The integration service.")] = "http://127.0.0.1:8001",
) -> None:
    """Create (or with --replace, replace) an integration from a document; print it as JSON.

    The access token is --token, --token-stdin (sent as a bearer token), or else the cached
    `tessera login` of --profile (refreshed when about to expire; a DPoP-bound login sends a
    proof with each request, RFC 9449).
    """
    import httpx

    if token_stdin:
        token = sys.stdin.readline().strip()
    auth: httpx.Auth | None = None
    headers = {"Content-Type": _media_type(file)}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    else:
        auth = _cached_login(profile, issuer, client_id).auth()
    try:
        content = file.read_bytes()
    except OSError as exc:
        _fail(f"cannot read {file}: {exc.strerror}")
    base = url.rstrip("/") + _API
    with httpx.Client(timeout=30.0, headers=headers, auth=auth) as http:
        try:
            response = http.post(f"{base}/integrations", content=content)
            if response.status_code == 409 and replace:
                ident = _check(http.get(f"{base}/integrations/{_ident(content, file)}"), "read")
                target = f"{base}/integrations/{ident['id']}"
                if ident.get("state") == "activated":
                    _check(http.post(f"{target}/deactivate"), "deactivate")
                response = http.put(target, content=content)
            shown = _check(response, "deploy")
            if activate:
                shown = _check(http.post(f"{base}/integrations/{shown['id']}/activate"), "activate")
        except httpx.HTTPError as exc:
            _fail(f"cannot reach {url}: {type(exc).__name__}", 1)
    typer.echo(json.dumps(shown, indent=2))


def _cached_login(profile: str, issuer: str | None, client_id: str | None) -> Session:
    """The session of a `tessera login` with a usable access token, or exit saying what to
    run."""
    from tessera.client.errors import ClientError, NotLoggedIn
    from tessera.client.session import Session, login_command
    from tessera.integration.scopes import SCOPE_MANAGE
    from tessera.integration.settings import DEFAULT_AUDIENCE

    try:
        session = Session.load(profile, issuer=issuer, client_id=client_id)
        session.access_token()  # refreshed now if about to expire; fails here if it cannot be
        return session
    except NotLoggedIn:
        login = login_command(issuer, client_id, profile)
        _fail(
            f"no access token: give --token or --token-stdin, or sign in first (profile "
            f"{profile!r}): {login} --scope {DEFAULT_AUDIENCE}:443{SCOPE_MANAGE}"
        )
    except ClientError as exc:
        hint = f" ({exc.hint})" if exc.hint else ""
        _fail(f"cannot use the cached login: {exc}{hint}")


def _ident(content: bytes, file: Path) -> str:
    from tessera.integration.document import DocumentError, parse_document

    try:
        return parse_document(content, _media_type(file)).ident
    except DocumentError as exc:
        _fail(exc.detail)
