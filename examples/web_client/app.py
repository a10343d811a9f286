"""A confidential web client: the seed's "client application" in its classic, server-side form.

It signs users in with the OAuth 2.0 authorization code flow at a Tessera identity domain
(client secret + PKCE, `state` bound to the browser session, `iss` checked per RFC 9207), keeps
the tokens on the server, shows who is signed in, and calls a protected API (the integration
service) with `Authorization: Bearer <access token>`, refreshing the token when it is about to
expire. README.md maps each of the seed's eight steps onto the code below.

    ISSUER=http://127.0.0.1:8000 CLIENT_ID=… CLIENT_SECRET=… \
    REDIRECT_URI=http://127.0.0.1:8080/callback \
    SCOPE="openid profile https://integration.tessera.test:443urn:opc:resource:consumer::all" \
    API_URL=http://127.0.0.1:8090/ic/api/integration/v1/integrations \
    python -m examples.web_client        # or: python examples/web_client/app.py

Sessions live in a server-side dictionary keyed by a random, HttpOnly, SameSite=Lax cookie:
the tokens never reach the browser, and a cookie could not hold them anyway. (A production app
would put them in a database or Redis, so that several processes can share them.)
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import secrets
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from tessera.client import (
    ClientError,
    Endpoints,
    LoginError,
    OAuthClient,
    Pkce,
    ServerMetadata,
    TokenSet,
    authorization_url,
    discover,
    unverified_jwt,
)
from tessera.client.loopback import check_authorization_response

__all__ = ["Settings", "create_app", "main"]

COOKIE = "web_client_session"
PENDING_LOGIN_SECONDS = 600  # a sign-in must come back within 10 minutes
SESSION_SECONDS = 8 * 3600
REFRESH_MARGIN = 60  # refresh an access token that expires within a minute


# --- configuration -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    issuer: str
    client_id: str
    client_secret: str = field(repr=False)
    redirect_uri: str
    api_url: str | None = None
    scope: str = "openid profile"
    post_logout_redirect_uri: str | None = None

    @classmethod
    def from_env(cls, env: Any = os.environ) -> Settings:
        missing = [
            name
            for name in ("ISSUER", "CLIENT_ID", "CLIENT_SECRET", "REDIRECT_URI")
            if not env.get(name)
        ]
        if missing:
            raise SystemExit(
                f"missing environment variables: {', '.join(missing)} (see "
                "examples/web_client/README.md)"
            )
        return cls(
            issuer=env["ISSUER"].rstrip("/"),
            client_id=env["CLIENT_ID"],
            client_secret=env["CLIENT_SECRET"],
            redirect_uri=env["REDIRECT_URI"],
            api_url=env.get("API_URL") or None,
            scope=env.get("SCOPE") or "openid profile",
            post_logout_redirect_uri=env.get("POST_LOGOUT_REDIRECT_URI") or None,
        )

    @property
    def secure_cookies(self) -> bool:
        return urlsplit(self.redirect_uri).scheme == "https"


# --- server-side sessions ----------------------------------------------------------------------


@dataclass
class PendingLogin:
    """What step 1 must remember for step 4: the PKCE verifier and the OIDC nonce."""

    verifier: str
    nonce: str
    started: float = field(default_factory=time.time)


@dataclass
class Session:
    id: str
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    created: float = field(default_factory=time.time)
    pending: dict[str, PendingLogin] = field(default_factory=dict)  # by `state`
    tokens: TokenSet | None = None
    user: dict[str, Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


class SessionStore:
    """Sessions by a 256-bit random id. In memory, for one process."""

    def __init__(self) -> None:
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def get(self, request: Request) -> Session | None:
        sid = request.cookies.get(COOKIE)
        if not sid:
            return None
        with self._lock:
            found = self._sessions.get(sid)
            if found is not None and found.created + SESSION_SECONDS < time.time():
                del self._sessions[sid]
                return None
            return found

    def create(self) -> Session:
        session = Session(id=secrets.token_urlsafe(32))
        with self._lock:
            now = time.time()
            for sid in [s for s, v in self._sessions.items() if v.created + SESSION_SECONDS < now]:
                del self._sessions[sid]
            self._sessions[session.id] = session
        return session

    def delete(self, session: Session) -> None:
        with self._lock:
            self._sessions.pop(session.id, None)


# --- pages -------------------------------------------------------------------------------------

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;background:#f4f5f7;color:#1d2330;
margin:0}
header{background:#1f3a5f;color:#fff;padding:.9rem 1.5rem;font-weight:600}
main{max-width:46rem;margin:2rem auto;background:#fff;border-radius:10px;padding:1.5rem 2rem;
box-shadow:0 2px 10px rgba(0,0,0,.07)}
h1{font-size:1.35rem;margin-top:0} .muted{color:#5b6475}
pre{background:#f6f8fa;border:1px solid #e1e4e8;border-radius:6px;padding:.8rem;overflow:auto;
font-size:.85rem}
.button{display:inline-block;background:#2563eb;color:#fff;border:0;border-radius:6px;
padding:.6rem 1.1rem;font-size:1rem;text-decoration:none;cursor:pointer}
.button.secondary{background:#e5e7eb;color:#1d2330}
.error{color:#b42318} dt{font-weight:600} dd{margin:0 0 .6rem 0}
"""

_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    document = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)} · Integration client</title><style>{_STYLE}</style>"
        f"</head><body><header>Integration client (Tessera demo)</header><main>{body}</main>"
        "</body></html>"
    )
    return HTMLResponse(document, status_code=status, headers=_HEADERS)


def _error(message: str, status: int = 400) -> HTMLResponse:
    return _page(
        "Sign-in failed",
        f'<h1>Sign-in failed</h1><p class="error" id="error">{html.escape(message)}</p>'
        '<p><a class="button" href="/">Back to the start</a></p>',
        status,
    )


# --- the application ---------------------------------------------------------------------------


def create_app(settings: Settings, *, http: httpx.Client | None = None) -> Starlette:
    sessions = SessionStore()
    client_http = http or httpx.Client(timeout=15.0)
    metadata_cache: list[ServerMetadata] = []

    def metadata() -> ServerMetadata:
        if not metadata_cache:  # discovered on first use: the app starts even if the IdP is down
            metadata_cache.append(discover(settings.issuer, client_http))
        return metadata_cache[0]

    def oauth() -> OAuthClient:
        meta = metadata()
        endpoints = Endpoints(meta.issuer, meta.token_endpoint, meta.revocation_endpoint)
        return OAuthClient(endpoints, settings.client_id, settings.client_secret, http=client_http)

    def with_cookie(response: Response, session: Session) -> Response:
        response.set_cookie(
            COOKIE,
            session.id,
            max_age=SESSION_SECONDS,
            httponly=True,
            samesite="lax",  # sent on the top-level redirect back from the identity domain
            secure=settings.secure_cookies,
            path="/",
        )
        return response

    # Step 1: the user asks to sign in; the browser is redirected to the authorization URI.
    async def login(request: Request) -> Response:
        session = sessions.get(request) or sessions.create()
        try:
            meta = await run_in_threadpool(metadata)
        except ClientError as exc:
            return _error(f"The identity domain is not reachable: {exc.message}", 502)
        pkce, state, nonce = Pkce.new(), secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        with session.lock:
            now = time.time()
            session.pending = {
                s: p for s, p in session.pending.items() if p.started + PENDING_LOGIN_SECONDS > now
            }
            session.pending[state] = PendingLogin(pkce.verifier, nonce)
        url = authorization_url(
            meta,
            client_id=settings.client_id,
            redirect_uri=settings.redirect_uri,
            scopes=settings.scope.split(),
            state=state,
            pkce=pkce,
            nonce=nonce,
        )
        return with_cookie(RedirectResponse(url, status_code=303), session)

    # Steps 3-6: the identity domain redirects back with a code; we exchange it for tokens.
    async def callback(request: Request) -> Response:
        session = sessions.get(request)
        params = dict(request.query_params)
        if session is None:
            return _error("Your session expired before the sign-in finished; please try again.")
        with session.lock:
            pending = session.pending.pop(params.get("state", ""), None)
        if pending is None or pending.started + PENDING_LOGIN_SECONDS < time.time():
            # `state` is bound to this browser's session (RFC 6749 §10.12): a forged or replayed
            # callback finds nothing to complete.
            return _error("This sign-in response does not belong to your session (state).")
        meta = await run_in_threadpool(metadata)
        try:
            response = check_authorization_response(
                params,
                expected_state=params["state"],  # matched a pending login of this session above
                expected_issuer=meta.issuer,
                require_iss=meta.iss_parameter_supported,
            )
            tokens = await run_in_threadpool(
                oauth().exchange_code, response.code, settings.redirect_uri, pending.verifier
            )
            user = _check_id_token(tokens, meta.issuer, settings.client_id, pending.nonce)
        except ClientError as exc:
            return _error(exc.message)
        with session.lock:
            session.tokens, session.user = tokens, user
        return RedirectResponse("/", status_code=303)

    def fresh_tokens(session: Session) -> TokenSet:
        """The session's tokens, refreshed first when the access token is about to expire."""
        with session.lock:
            tokens = session.tokens
            assert tokens is not None
            expires_in = tokens.expires_in()
            if expires_in is not None and expires_in < REFRESH_MARGIN and tokens.refresh_token:
                tokens = oauth().refresh(tokens)
                session.tokens = tokens
            return tokens

    def call_api(session: Session) -> dict[str, Any]:
        """Steps 7-8: call the protected API with `Authorization: Bearer <access token>`."""
        assert settings.api_url is not None
        try:
            tokens = fresh_tokens(session)
            response = client_http.get(
                settings.api_url,
                headers={"Authorization": f"Bearer {tokens.access_token}"},
            )
        except (ClientError, httpx.HTTPError) as exc:
            return {"status": None, "body": f"the call failed: {exc}"}
        try:
            body: Any = response.json()
        except ValueError:
            body = response.text
        return {"status": response.status_code, "body": body}

    async def home(request: Request) -> Response:
        session = sessions.get(request)
        if session is None or session.tokens is None:
            return _page(
                "Welcome",
                "<h1>Welcome</h1><p>This client application reaches the integration service "
                "on your behalf. Sign in with your identity domain account to continue.</p>"
                '<p><a class="button" id="sign-in" href="/login">Sign in</a></p>',
            )
        user = session.user
        tokens = session.tokens
        parts = [
            f'<h1 id="signed-in">Signed in as {html.escape(str(user.get("name")))}</h1>',
            '<dl><dt>Username</dt><dd id="username">'
            f"{html.escape(str(user.get('preferred_username', '-')))}</dd>"
            f"<dt>Subject</dt><dd>{html.escape(str(user.get('sub')))}</dd>"
            f"<dt>Scopes granted</dt><dd>{html.escape(tokens.scope or '-')}</dd></dl>",
        ]
        if settings.api_url:
            result = await run_in_threadpool(call_api, session)
            pretty = json.dumps(result["body"], indent=2)
            parts.append(
                f"<h2>The integration service answered "
                f'<span id="api-status">{html.escape(str(result["status"]))}</span></h2>'
                f'<p class="muted">GET {html.escape(settings.api_url)} with the access token</p>'
                f'<pre id="api-response">{html.escape(pretty)}</pre>'
            )
        parts.append(
            '<form method="post" action="/logout">'
            f'<input type="hidden" name="csrf" value="{html.escape(session.csrf)}">'
            '<button class="button secondary" type="submit">Sign out</button></form>'
        )
        return _page("Signed in", "".join(parts))

    async def logout(request: Request) -> Response:
        session = sessions.get(request)
        form = await request.form()
        if session is None or not secrets.compare_digest(str(form.get("csrf", "")), session.csrf):
            return RedirectResponse("/", status_code=303)
        tokens = session.tokens
        sessions.delete(session)
        if tokens is not None:
            token, hint = (
                (tokens.refresh_token, "refresh_token")
                if tokens.refresh_token
                else (tokens.access_token, "access_token")
            )
            try:  # RFC 7009: the refresh token, and with it its grant
                await run_in_threadpool(oauth().revoke, token, hint)
            except ClientError as exc:
                print(f"revocation failed: {exc.message}", file=sys.stderr)
        target = "/"
        meta = metadata_cache[0] if metadata_cache else None
        if settings.post_logout_redirect_uri and meta and meta.end_session_endpoint:
            # OIDC RP-initiated logout: end the identity domain's browser session too.
            query = {
                "client_id": settings.client_id,
                "post_logout_redirect_uri": settings.post_logout_redirect_uri,
            }
            if tokens is not None and tokens.id_token:
                query["id_token_hint"] = tokens.id_token
            target = f"{meta.end_session_endpoint}?{urlencode(query)}"
        response = RedirectResponse(target, status_code=303)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax")
        return response

    return Starlette(
        routes=[
            Route("/", home),
            Route("/login", login),
            Route("/callback", callback),
            Route("/logout", logout, methods=["POST"]),
        ]
    )


def _check_id_token(tokens: TokenSet, issuer: str, client_id: str, nonce: str) -> dict[str, Any]:
    """Who signed in (OIDC Core §3.1.3.7): the ID token came straight from the token endpoint,
    so its signature may go unchecked, but `iss`, `aud` and `nonce` must match."""
    if tokens.id_token is None:
        raise LoginError("the token response has no ID token (ask for the openid scope)")
    try:
        _, claims = unverified_jwt(tokens.id_token)
    except ValueError as exc:
        raise LoginError(f"the ID token is malformed ({exc})") from None
    audience = claims.get("aud")
    if claims.get("iss") != issuer or client_id not in (
        audience if isinstance(audience, list) else [audience]
    ):
        raise LoginError("the ID token is not for this application")
    if claims.get("nonce") != nonce:
        raise LoginError("the ID token does not belong to this sign-in (nonce)")
    access: dict[str, Any] = {}
    with contextlib.suppress(ValueError):  # an opaque access token has no claims to show
        access = unverified_jwt(tokens.access_token)[1]
    return {
        "sub": claims.get("sub"),
        "name": claims.get("name") or access.get("user_displayname") or claims.get("sub"),
        "preferred_username": claims.get("preferred_username"),
    }


def main() -> None:
    import uvicorn

    settings = Settings.from_env()
    target = urlsplit(settings.redirect_uri)
    host = os.environ.get("HOST") or target.hostname or "127.0.0.1"
    port = int(os.environ.get("PORT") or target.port or 8080)
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")


if __name__ == "__main__":
    main()
