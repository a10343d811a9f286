"""`tessera login | token | call | logout`: the client side of the seed's flow, for people and
scripts.

    tessera login --issuer https://id.example.com --client-id CLI_ID --scope <audience><scope>
    tessera login --issuer https://id.example.com --client-id APP_ID --private-key app-key.pem
    tessera call GET https://api.example.com/ic/api/integration/v1/integrations
    TOKEN=$(tessera token)
    tessera logout

A confidential app signs in with its secret (`--client-secret-stdin`) or, registered for
`private_key_jwt`, with its private key (`--private-key FILE`: PEM or JWK; the token cache keeps
the file's path, never the key). The authorization request is pushed (PAR, RFC 9126) whenever
the identity domain offers it (`--no-par`: a plain request).

DPoP (RFC 9449): when the identity domain offers it (ES256 in `dpop_signing_alg_values_supported`),
`tessera login` makes a P-256 key for the login, kept with the tokens in the 0600 cache; the
tokens are bound to it, every refresh and every `tessera call` signs a proof with it, and a
copied token is useless without it. `--no-dpop`: plain bearer tokens.

Step-up (RFC 9470): `tessera login --acr <level> --max-age <seconds>` asks for a level of
sign-in and a recent one; when an API answers `tessera call` with a 401
`insufficient_user_authentication` challenge, the call signs in again in the browser for what
the API named and retries once (`--no-step-up`: exit 2 with the `tessera login` to run).

Exit codes: 0 success; 1 something failed (network, the identity domain refused, the browser
login failed, the API answered non-2xx); 2 you need to act first (not logged in, login expired,
a corrupted token cache, bad options). Secrets and tokens are never printed, except the access
token that `tessera token` exists to print.
"""

from __future__ import annotations

import getpass
import json
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn
from urllib.parse import urlsplit

import typer
from rich.console import Console
from rich.markup import escape

# tessera.client (and httpx) are imported in the commands: see tessera/cli/__init__.py.
if TYPE_CHECKING:
    import httpx

    from tessera.client import (
        CacheEntry,
        ClientError,
        DeviceCode,
        Session,
        StepUp,
        StepUpHandler,
        TokenSet,
    )

__all__ = ["call", "login", "logout", "token"]

# Own consoles and error helper, the same format as tessera.cli.output's: this module imports
# nothing server-side, so that `tessera token` in a script can start quickly.
console = Console()
err_console = Console(stderr=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]

ProfileOpt = Annotated[
    str, typer.Option("--profile", "-p", help="A name for this login (several may coexist).")
]
IssuerSel = Annotated[
    str | None,
    typer.Option("--issuer", help="Pick the profile's login at this issuer (if it has several)."),
]
ClientSel = Annotated[
    str | None,
    typer.Option("--client-id", help="Pick the profile's login of this app (if it has several)."),
]

NoBrowserOpt = Annotated[
    bool, typer.Option("--no-browser", help="Print the URL to open instead of opening a browser.")
]
LoginTimeoutOpt = Annotated[
    float, typer.Option("--login-timeout", help="Seconds to wait for a browser sign-in.", min=1)
]


def fail(
    message: str,
    as_json: bool,
    code: int = 2,
    hint: str | None = None,
    extra: dict[str, Any] | None = None,
) -> NoReturn:
    if as_json:
        payload = {"error": message, **({"hint": hint} if hint else {}), **(extra or {})}
        sys.stderr.write(json.dumps(payload) + "\n")
    else:
        err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
        if hint:
            err_console.print(f"[dim]{escape(hint)}[/]", highlight=False)
    raise typer.Exit(code)


def _fail(exc: ClientError, as_json: bool) -> NoReturn:
    from tessera.client import CacheError, KeyFileError, LoginExpired, NotLoggedIn, StepUpRequired

    extra = None
    if isinstance(exc, StepUpRequired):
        extra = {
            "reason": "insufficient_user_authentication",
            "acr_values": list(exc.acr_values),
            "max_age": exc.max_age,
        }
    needs_action = (NotLoggedIn, LoginExpired, CacheError, StepUpRequired, KeyFileError)
    code = 2 if isinstance(exc, needs_action) else 1
    fail(exc.message, as_json, code, hint=exc.hint, extra=extra)


@contextmanager
def _client_errors(as_json: bool) -> Iterator[None]:
    """Known failures become a message, a hint and an exit code, never a traceback."""
    from tessera.client import ClientError

    try:
        yield
    except ClientError as exc:
        _fail(exc, as_json)
    except KeyboardInterrupt:
        fail("cancelled", as_json, 130)


def _write(text: str) -> None:
    """Raw stdout (no Rich wrapping: tokens and URLs must stay on one line)."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _json(data: Any) -> None:
    _write(json.dumps(data, indent=2))


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "unknown"
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


def _lifetime(seconds: float | None) -> str:
    if seconds is None:
        return "an unknown time"
    if seconds <= 0:
        return "expired"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def _who(session: Session) -> dict[str, Any]:
    """Who signed in, from the ID token (checked at login) or the access token claims."""
    from tessera.client import unverified_jwt

    claims: dict[str, Any] = {}
    for raw in (session.tokens.id_token, session.tokens.access_token):
        if raw:
            try:
                claims = {**unverified_jwt(raw)[1], **claims}
            except ValueError:
                continue
    name = (
        claims.get("name")
        or claims.get("user_displayname")
        or claims.get("preferred_username")
        or claims.get("sub")
    )
    return {
        "subject": claims.get("sub"),
        "name": name,
        "username": claims.get("preferred_username"),
        "acr": claims.get("acr"),
    }


def _read_secret(as_json: bool) -> str:
    if sys.stdin.isatty():
        secret = getpass.getpass("Client secret: ")
    else:
        secret = sys.stdin.readline().strip()
    if not secret:
        fail(
            "no client secret on stdin",
            as_json,
            hint='pipe it in: echo "$SECRET" | tessera login … --client-secret-stdin',
        )
    return secret


# --- login -------------------------------------------------------------------------------------

# The options of `login` that only it has.
AcrOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--acr",
        help="An authentication level to ask for (repeatable or space-separated, in order "
        "of preference), e.g. urn:tessera:acr:mfa.",
    ),
]
MaxAgeOpt = Annotated[
    int | None,
    typer.Option(
        "--max-age", help="Sign in again unless you signed in this many seconds ago.", min=0
    ),
]
PrivateKeyOpt = Annotated[
    Path | None,
    typer.Option(
        "--private-key",
        help="The app's private key (PEM or JWK: RSA, EC P-256 or Ed25519) for "
        "private_key_jwt; the token cache keeps its path, never the key.",
        dir_okay=False,
    ),
]
KeyIdOpt = Annotated[
    str | None,
    typer.Option(
        "--key-id",
        help="The kid of the registered key, when not the file's own or its RFC 7638 thumbprint.",
    ),
]
NoParOpt = Annotated[
    bool,
    typer.Option(
        "--no-par",
        help="Send a plain authorization request even when the identity domain offers "
        "pushed requests (RFC 9126); it refuses if it requires them.",
    ),
]


NoDpopOpt = Annotated[
    bool,
    typer.Option(
        "--no-dpop",
        help="Get plain bearer tokens even when the identity domain offers DPoP (RFC 9449) "
        "sender-constrained ones.",
    ),
]


DeviceOpt = Annotated[
    bool,
    typer.Option(
        "--device",
        help="Sign in on another device (RFC 8628): print a URL, a code and a QR code, and wait "
        "for the approval there. For SSH sessions and machines without a browser.",
    ),
]


def login(
    issuer: Annotated[str, typer.Option(help="The identity domain's issuer URL.")],
    client_id: Annotated[str, typer.Option("--client-id", help="The app's client id.")],
    client_secret_stdin: Annotated[
        bool,
        typer.Option(
            "--client-secret-stdin",
            help="Read a confidential app's secret from stdin (kept in the 0600 token cache).",
        ),
    ] = False,
    scope: Annotated[
        list[str] | None,
        typer.Option(help="A scope to ask for (repeatable); openid is always asked for."),
    ] = None,
    profile: ProfileOpt = "default",
    no_browser: NoBrowserOpt = False,
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for the browser sign-in.", min=1)
    ] = 300.0,
    acr: AcrOpt = None,
    max_age: MaxAgeOpt = None,
    private_key: PrivateKeyOpt = None,
    key_id: KeyIdOpt = None,
    no_par: NoParOpt = False,
    no_dpop: NoDpopOpt = False,
    device: DeviceOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Sign in through the browser (authorization code + PKCE, loopback redirect), or with
    --device on another device (device authorization grant)."""
    from tessera.client import KeyFileWarning
    from tessera.client import login as client_login
    from tessera.client.private_key_jwt import key_file_warning

    if private_key is not None and client_secret_stdin:
        fail(
            "--private-key and --client-secret-stdin exclude each other",
            as_json,
            hint="an app authenticates with its private key (private_key_jwt) or its secret",
        )
    if key_id is not None and private_key is None:
        fail("--key-id needs --private-key", as_json)
    if device and (acr or max_age is not None):
        fail("--acr and --max-age do not apply to --device", as_json)
    secret = _read_secret(as_json) if client_secret_stdin else None
    if private_key is not None and (warning := key_file_warning(private_key)) is not None:
        _warn(warning)
    if device:
        options = _DeviceOptions(secret, scope or [], profile, private_key, key_id, not no_dpop)
        _device_login(issuer, client_id, options, as_json)
        return
    status = err_console.status(
        f"Waiting for you to sign in in the browser (up to {timeout:g} s)…", spinner="dots"
    )
    with _client_errors(as_json), warnings.catch_warnings():
        warnings.simplefilter("ignore", KeyFileWarning)  # printed above, the CLI's way
        try:
            session = client_login(
                issuer,
                client_id,
                client_secret=secret,
                scopes=scope or [],
                profile=profile,
                opener=_show_url if no_browser else _open_browser,
                timeout=timeout,
                on_waiting=lambda _: status.start(),
                acr_values=acr or [],
                max_age=max_age,
                private_key=private_key,
                key_id=key_id,
                par=not no_par,
                dpop=not no_dpop,
            )
        finally:
            status.stop()
        _report_login(session, as_json)


@dataclass(frozen=True, slots=True)
class _DeviceOptions:
    secret: str | None
    scopes: list[str]
    profile: str
    private_key: Path | None
    key_id: str | None
    dpop: bool


def _device_login(issuer: str, client_id: str, options: _DeviceOptions, as_json: bool) -> None:
    """`tessera login --device`: the code and where to enter it, a spinner while polling,
    then the same result and cache as the browser login."""
    from tessera.client import KeyFileWarning, device_login

    status = err_console.status("Waiting for the sign-in on the other device…", spinner="dots")
    deadline = [0.0]

    def show(code: DeviceCode) -> None:
        _show_device_code(code, as_json)
        deadline[0] = time.monotonic() + code.expires_in
        status.start()

    def polled(interval: int) -> None:
        left = max(0, int(deadline[0] - time.monotonic()))
        status.update(
            f"Waiting for the sign-in on the other device… (the code expires in "
            f"{left // 60}:{left % 60:02d}; checking every {interval} s)"
        )

    with _client_errors(as_json), warnings.catch_warnings():
        warnings.simplefilter("ignore", KeyFileWarning)  # printed by the caller
        try:
            session = device_login(
                issuer,
                client_id,
                client_secret=options.secret,
                private_key=options.private_key,
                key_id=options.key_id,
                scopes=options.scopes,
                profile=options.profile,
                on_code=show,
                on_poll=polled,
                dpop=options.dpop,
            )
        finally:
            status.stop()
        _report_login(session, as_json)


def _show_device_code(code: DeviceCode, as_json: bool) -> None:
    """RFC 8628 §3.3: where to go and the code to enter (on stderr); the link that fills the
    code in on stdout, with a QR code of it when stdout is a terminal (§3.3.1); with --json,
    stdout keeps the result only."""
    err_console.print(
        f"To sign in, open [bold]{escape(code.verification_uri)}[/] on your phone or computer "
        "and enter the code:",
        highlight=False,
    )
    err_console.print(f"\n    [bold cyan]{escape(code.user_code)}[/]\n", highlight=False)
    complete = code.verification_uri_complete
    if complete is None or as_json:
        return
    err_console.print(
        "Or open this link, which fills the code in (check that the page shows the same code):",
        highlight=False,
    )
    _write(complete)
    if sys.stdout.isatty():
        import segno

        segno.make(complete, micro=False).terminal(out=sys.stdout, compact=True)


def _warn(message: str) -> None:
    err_console.print(f"[yellow]warning:[/] {escape(message)}", highlight=False)


def _show_url(url: str) -> None:
    err_console.print("Open this URL in a browser to sign in:", highlight=False)
    _write(url)


def _open_browser(url: str) -> None:
    import webbrowser

    try:
        opened = webbrowser.open(url)
    except webbrowser.Error:
        opened = False
    if opened:
        err_console.print(
            "Opened your browser to sign in. If it did not open, visit:", highlight=False
        )
        err_console.print(escape(url), soft_wrap=True, highlight=False, style="dim")
    else:
        _show_url(url)


def _login_result(session: Session) -> dict[str, Any]:
    entry = session.entry
    path = session.cache.path_for(entry.issuer, entry.client_id, entry.profile)
    key = None
    if entry.private_key is not None:
        loaded = entry.private_key.load()
        key = {"path": entry.private_key.path, "kid": loaded.kid, "alg": loaded.alg}
    method = "private_key_jwt" if key else "client_secret_basic" if entry.client_secret else "none"
    return {
        "profile": entry.profile,
        "issuer": entry.issuer,
        "client_id": entry.client_id,
        "confidential": method != "none",
        "client_authentication": method,
        "private_key": key,
        "pushed_authorization_request": session.pushed_authorization_request,
        "token_type": entry.tokens.token_type,
        "dpop_jkt": None if entry.dpop_key is None else entry.dpop_key.thumbprint(),
        **_who(session),
        "scope": entry.tokens.scope,
        "expires_at": entry.tokens.expires_at,
        "refresh_token": entry.tokens.refresh_token is not None,
        "cache_file": str(path),
    }


def _report_login(session: Session, as_json: bool) -> None:
    """What a login (browser or device) gave: JSON on stdout, or the summary on stderr."""
    result = _login_result(session)
    if as_json:
        _json(result)
        return
    _print_login(session, result)


def _print_login(session: Session, result: dict[str, Any]) -> None:
    entry = session.entry
    lifetime = _lifetime(entry.tokens.expires_in())
    err_console.print(
        f"[bold green]✓[/] Signed in as [bold]{escape(str(result['name']))}[/] at "
        f"{escape(entry.issuer)} (profile [bold]{escape(entry.profile)}[/]).",
        highlight=False,
    )
    if result.get("acr"):
        err_console.print(f"  Sign-in level: {escape(str(result['acr']))}", highlight=False)
    key = result.get("private_key")
    if key:
        err_console.print(
            f"  The app authenticates with private_key_jwt ({escape(key['alg'])}, key id "
            f"{escape(key['kid'])}); the cache keeps the key file's path, not the key.",
            highlight=False,
        )
    if result["pushed_authorization_request"]:
        err_console.print("  The sign-in request was pushed to the identity domain (PAR).")
    if result["token_type"] == "DPoP":
        err_console.print(
            "  The tokens are bound to this login's DPoP key (RFC 9449; thumbprint "
            f"{escape(str(result['dpop_jkt']))}): use them with tessera call.",
            highlight=False,
        )
    err_console.print(
        f"  Access token valid for {lifetime}"
        + ("; refreshed automatically." if entry.tokens.refresh_token else ".")
        + f"\n  Tokens cached in {escape(result['cache_file'])} (mode 0600).",
        highlight=False,
    )


# --- token -------------------------------------------------------------------------------------


def _session(profile: str, issuer: str | None, client_id: str | None) -> Session:
    from tessera.client import Session, TokenCache

    return Session.load(profile, issuer=issuer, client_id=client_id, cache=TokenCache())


def token(
    profile: ProfileOpt = "default",
    issuer: IssuerSel = None,
    client_id: ClientSel = None,
    decode: Annotated[
        bool,
        typer.Option(
            "--decode", help="Show the token's header and claims (not signature-checked)."
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Print the current access token, refreshed first when it is about to expire."""
    from tessera.client import unverified_jwt

    with _client_errors(as_json):
        session = _session(profile, issuer, client_id)
        access = session.access_token()
        tokens, entry = session.tokens, session.entry
        header: dict[str, Any] = {}
        claims: dict[str, Any] = {}
        if decode:
            try:
                header, claims = unverified_jwt(access)
            except ValueError as exc:
                fail(f"the access token is not a JWT ({exc})", as_json, 1)
        if as_json:
            data: dict[str, Any] = {
                "access_token": access,
                "token_type": tokens.token_type,
                "expires_at": tokens.expires_at,
                "expires_in": None
                if tokens.expires_at is None
                else max(0, int(tokens.expires_at - time.time())),
                "scope": tokens.scope,
                "issuer": entry.issuer,
                "client_id": entry.client_id,
                "profile": entry.profile,
                "refreshed": session.refreshed,
                "dpop_jkt": None if entry.dpop_key is None else entry.dpop_key.thumbprint(),
            }
            if decode:
                data.update(header=header, claims=claims, signature_verified=False)
            _json(data)
            return
        if not decode:
            _write(access)
            if tokens.is_dpop:
                err_console.print(
                    "[dim]This token is DPoP-bound (RFC 9449): it works only with a proof "
                    "signed by this login's key, as tessera call sends.[/]",
                    highlight=False,
                )
            return
        _print_decoded(header, claims)


def _print_decoded(header: dict[str, Any], claims: dict[str, Any]) -> None:
    """`tessera token --decode` for people: the header and the claims as JSON panels."""
    from rich.panel import Panel
    from rich.syntax import Syntax

    console.print(
        Panel(
            Syntax(json.dumps(header, indent=2), "json", word_wrap=True),
            title="header",
            expand=False,
        )
    )
    console.print(
        Panel(
            Syntax(json.dumps(claims, indent=2), "json", word_wrap=True),
            title="claims",
            expand=False,
        )
    )
    times = ", ".join(
        f"{name} {_when(claims[name])}"
        for name in ("iat", "exp")
        if isinstance(claims.get(name), int | float)
    )
    err_console.print(
        f"[dim]{times}. Decoded without checking the signature: the resource server "
        "validates it; this is for reading only.[/]",
        highlight=False,
    )


# --- call --------------------------------------------------------------------------------------


def _body(data: str | None) -> tuple[bytes | None, str | None]:
    """curl-like `--data`: text, `@file`, or `@-` for stdin; JSON is sent as JSON."""
    from tessera.client import ClientError

    if data is None:
        return None, None
    if data == "@-":
        raw = sys.stdin.buffer.read()
    elif data.startswith("@"):
        try:
            raw = Path(data[1:]).expanduser().read_bytes()
        except OSError as exc:
            raise ClientError(f"cannot read {data[1:]} ({exc.strerror})") from None
    else:
        raw = data.encode("utf-8")
    try:
        json.loads(raw)
    except ValueError:
        return raw, "application/x-www-form-urlencoded"
    return raw, "application/json"


def _headers(values: list[str]) -> dict[str, str]:
    from tessera.client import ClientError

    headers: dict[str, str] = {}
    for value in values:
        name, sep, content = value.partition(":")
        if not sep or not name.strip():
            raise ClientError(f"bad --header {value!r}", hint="write it as 'Name: value'")
        if name.strip().lower() == "authorization":
            raise ClientError("--header Authorization is set by tessera call from your login")
        headers[name.strip()] = content.strip()
    return headers


def _response_body(response: httpx.Response) -> Any:
    if "json" in response.headers.get("content-type", ""):
        try:
            return response.json()
        except ValueError:
            pass
    return response.text


def call(
    method: Annotated[str, typer.Argument(help="GET, POST, PUT, PATCH, DELETE, …")],
    url: Annotated[str, typer.Argument(help="The API URL.")],
    data: Annotated[
        str | None,
        typer.Option("--data", "-d", help="Request body; @file reads a file, @- stdin."),
    ] = None,
    header: Annotated[
        list[str] | None,
        typer.Option("--header", "-H", help="An extra header 'Name: value' (repeatable)."),
    ] = None,
    profile: ProfileOpt = "default",
    issuer: IssuerSel = None,
    client_id: ClientSel = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the API.")] = 60.0,
    no_step_up: Annotated[
        bool,
        typer.Option(
            "--no-step-up",
            help="When the API asks for a stronger or more recent sign-in (RFC 9470), fail "
            "instead of signing in again in the browser and retrying once.",
        ),
    ] = False,
    no_browser: NoBrowserOpt = False,
    login_timeout: LoginTimeoutOpt = 300.0,
    as_json: JsonOpt = False,
) -> None:
    """Call an API with your access token (curl-like; with a DPoP proof when the token is
    bound to your login's key); prints the status and the body."""
    import httpx

    from tessera.client import ClientError

    with _client_errors(as_json):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ClientError(f"{url!r} is not an http(s) URL")
        if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            err_console.print(
                "[yellow]warning:[/] sending an access token over plain http", highlight=False
            )
        headers = _headers(header or [])
        content, ctype = _body(data)
        if ctype is not None and not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = ctype
        session = _session(profile, issuer, client_id)
        if not no_step_up:
            session.step_up_handler = _step_up_handler(no_browser, login_timeout)
        try:
            with httpx.Client(auth=session.auth(), timeout=timeout) as http:
                response = http.request(method.upper(), url, content=content, headers=headers)
        except httpx.HTTPError as exc:
            raise ClientError(f"cannot reach {url} ({exc.__class__.__name__}: {exc})") from None
        body = _response_body(response)
        ok = 200 <= response.status_code < 300
        if as_json:
            _json(
                {
                    "status": response.status_code,
                    "reason": response.reason_phrase,
                    "headers": dict(response.headers),
                    "body": body,
                }
            )
        else:
            colour = "green" if ok else "red"
            err_console.print(
                f"[bold {colour}]HTTP {response.status_code} {escape(response.reason_phrase)}[/]",
                highlight=False,
            )
            if isinstance(body, str):
                if body:
                    _write(body.rstrip("\n"))
            else:
                _write(json.dumps(body, indent=2))
            _explain_401(response, session)
        if not ok:
            raise typer.Exit(1)


def _explain_401(response: httpx.Response, session: Session) -> None:
    if response.status_code != 401:
        return
    from tessera.client import step_up_challenge

    challenge = step_up_challenge(response)
    if challenge is not None:  # still, after the one step-up
        err_console.print(
            "[dim]The API still asks for a stronger or more recent sign-in "
            f"({escape(challenge.describe())}); the identity domain did not give it.[/]",
            highlight=False,
        )
        return
    from tessera.client.dpop import challenge_error

    error = challenge_error(response)
    if error in ("invalid_dpop_proof", "use_dpop_nonce"):
        err_console.print(
            f"[dim]The API refused the DPoP proof ({escape(error)}); is this machine's clock "
            f"right? Otherwise {escape(session.relogin_hint())}[/]",
            highlight=False,
        )
        return
    err_console.print(f"[dim]The API refused the token; {escape(session.relogin_hint())}[/]")


def _step_up_handler(no_browser: bool, timeout: float) -> StepUpHandler:
    """The browser login of `tessera login`, run again for what the API asked (RFC 9470)."""
    from tessera.client import browser_step_up

    status = err_console.status(
        f"Waiting for you to sign in in the browser (up to {timeout:g} s)…", spinner="dots"
    )
    inner = browser_step_up(
        opener=_show_url if no_browser else _open_browser,
        timeout=timeout,
        on_waiting=lambda _: status.start(),
    )

    def step_up(entry: CacheEntry, challenge: StepUp) -> TokenSet:
        err_console.print(
            "[yellow]The API asks for a stronger or more recent sign-in[/] "
            f"({escape(challenge.describe())}); signing in again.",
            highlight=False,
        )
        try:
            tokens = inner(entry, challenge)
        finally:
            status.stop()
        err_console.print("[bold green]✓[/] Signed in again; retrying the request.")
        return tokens

    return step_up


# --- logout ------------------------------------------------------------------------------------


def logout(
    profile: ProfileOpt = "default",
    issuer: IssuerSel = None,
    client_id: ClientSel = None,
    forget: Annotated[
        bool,
        typer.Option(
            "--forget", help="Delete the cached tokens even if the revocation call fails."
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Revoke the login's tokens at the identity domain and delete them from the cache."""
    from tessera.client import ClientError, NotLoggedIn

    with _client_errors(as_json):
        try:
            session = _session(profile, issuer, client_id)
        except NotLoggedIn:
            if as_json:
                _json({"profile": profile, "logged_in": False, "revoked": False})
            else:
                err_console.print(f"Not logged in (profile {escape(profile)}); nothing to do.")
            return
        entry = session.entry
        try:
            revoked = session.logout(forget_on_error=forget)
        except ClientError as exc:
            exc.hint = "run tessera logout again, or add --forget to delete the local tokens anyway"
            raise
        if as_json:
            _json(
                {
                    "profile": entry.profile,
                    "issuer": entry.issuer,
                    "client_id": entry.client_id,
                    "logged_in": False,
                    "revoked": revoked,
                }
            )
        elif revoked:
            err_console.print(
                f"[bold green]✓[/] Logged out of {escape(entry.issuer)} (profile "
                f"{escape(entry.profile)}); the tokens are revoked and deleted.",
                highlight=False,
            )
        else:
            err_console.print(
                "[yellow]Deleted the local tokens, but the identity domain did not confirm the "
                "revocation;[/] they stay valid until they expire.",
                highlight=False,
            )
        if not revoked:
            raise typer.Exit(1)
