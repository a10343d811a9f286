"""DPoP in the client library (RFC 9449): the proofs it signs (checked with the server's own
`tessera.shared.dpop.verify_proof`), the key kept with the tokens, the token requests and API
calls that carry proofs, and the one retry with a server nonce (§8, §9).

The identity domain and the API are fakes behind `httpx.MockTransport` that verify every proof
with the real checks; the real server: tests/e2e/test_cli_dpop.py.
"""

from __future__ import annotations

import asyncio
import base64
import json
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tessera.client.cache import CacheEntry, TokenCache
from tessera.client.dpop import DPoPKey, DPoPSigner, htu_of, is_nonce_challenge, is_nonce_error
from tessera.client.errors import CacheError, ClientError, OAuthResponseError
from tessera.client.login import login
from tessera.client.session import Session
from tessera.client.stepup import step_up_challenge
from tessera.client.tokens import Endpoints, TokenSet
from tessera.shared.dpop import (
    DPoPError,
    InvalidProof,
    NonceRequired,
    NonceSource,
    proof_from_headers,
    verify_proof,
)
from tests.unit.client.fakes import ISSUER, FakeIdp, UserAgent, fake_jwt

TOKEN = f"{ISSUER}/oauth2/v1/token"
API = "https://api.example.test/things"
ENDPOINTS = Endpoints(ISSUER, TOKEN, f"{ISSUER}/oauth2/v1/revoke")
NONCE_SECRET = b"n" * 32


def decode(segment: str) -> dict[str, Any]:
    return dict(json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))))


def parts(proof: str) -> tuple[dict[str, Any], dict[str, Any]]:
    header, claims, _ = proof.split(".")
    return decode(header), decode(claims)


def response(status: int, url: str, **headers: str) -> httpx.Response:
    return httpx.Response(status, headers=headers, request=httpx.Request("GET", url))


# --- the proof -------------------------------------------------------------------------------


def test_a_proof_has_the_rfc_9449_shape_and_passes_the_servers_checks() -> None:
    key = DPoPKey.generate()
    signer = DPoPSigner(key, clock=lambda: 1_800_000_000.4)
    proof = signer.proof("get", f"{API}?page=2#top", access_token="the-token")
    header, claims = parts(proof)
    assert header["typ"] == "dpop+jwt"
    assert header["alg"] == "ES256"
    assert set(header["jwk"]) == {"kty", "crv", "x", "y"}  # the public key only, never d
    assert (header["jwk"]["kty"], header["jwk"]["crv"]) == ("EC", "P-256")
    assert claims["htm"] == "GET"
    assert claims["htu"] == API  # §4.2: without query and fragment
    assert claims["iat"] == 1_800_000_000
    assert len(claims["jti"]) >= 22  # at least 128 random bits
    assert "nonce" not in claims
    checked = verify_proof(
        proof, method="GET", url=f"{API}?page=2", now=1_800_000_001, access_token="the-token"
    )
    assert checked.jkt == key.thumbprint() == signer.jkt
    with pytest.raises(InvalidProof, match="ath"):
        verify_proof(proof, method="GET", url=API, now=1_800_000_001, access_token="another")


def test_each_proof_has_a_new_jti_and_no_ath_without_a_token() -> None:
    signer = DPoPSigner(DPoPKey.generate())
    first, second = (parts(signer.proof("POST", TOKEN))[1] for _ in range(2))
    assert first["jti"] != second["jti"]
    assert "ath" not in first
    verify_proof(signer.proof("POST", TOKEN), method="POST", url=TOKEN)


def test_the_thumbprint_is_rfc_7638s() -> None:
    from joserfc.jwk import ECKey

    key = DPoPKey.generate()
    public: Any = key.public_jwk()
    assert key.thumbprint() == ECKey.import_key(public).thumbprint()


def test_a_servers_nonce_is_remembered_per_origin_and_put_in_proofs() -> None:
    nonces = NonceSource(NONCE_SECRET)
    now = time.time()
    signer = DPoPSigner(DPoPKey.generate())
    with pytest.raises(NonceRequired):
        verify_proof(signer.proof("GET", API), method="GET", url=API, nonces=nonces)
    fresh = nonces.current(now)
    assert signer.remember(response(200, f"{API}/x", **{"DPoP-Nonce": fresh})) is True
    assert signer.remember(response(200, API, **{"DPoP-Nonce": fresh})) is False  # not new
    proof = signer.proof("GET", API)
    assert parts(proof)[1]["nonce"] == fresh
    assert verify_proof(proof, method="GET", url=API, nonces=nonces).nonce == fresh
    assert "nonce" not in parts(signer.proof("POST", TOKEN))[1]  # another server
    # Not a nonce (§8.1 NQCHAR): ignored.
    assert signer.remember(response(200, API, **{"DPoP-Nonce": 'a "quoted" one'})) is False


def test_nonce_answers_are_recognised() -> None:
    nonce = {"DPoP-Nonce": "n-1"}
    token_error = httpx.Response(
        400, json={"error": "use_dpop_nonce"}, headers=nonce, request=httpx.Request("POST", TOKEN)
    )
    assert is_nonce_error(token_error)
    assert not is_nonce_error(
        httpx.Response(400, json={"error": "use_dpop_nonce"}, request=token_error.request)
    )
    challenge = 'Bearer realm="api", DPoP algs="ES256", error="use_dpop_nonce"'
    assert is_nonce_challenge(response(401, API, **{"WWW-Authenticate": challenge}, **nonce))
    other = 'DPoP algs="ES256", error="invalid_dpop_proof"'
    assert not is_nonce_challenge(response(401, API, **{"WWW-Authenticate": other}, **nonce))
    bearer = 'Bearer error="use_dpop_nonce"'  # only the DPoP challenge counts
    assert not is_nonce_challenge(response(401, API, **{"WWW-Authenticate": bearer}, **nonce))


def test_htu_drops_query_and_fragment() -> None:
    assert htu_of("https://a.test:8443/p/q?x=1#f") == "https://a.test:8443/p/q"
    assert htu_of("https://a.test") == "https://a.test/"


# --- a fake identity domain that checks proofs ----------------------------------------------


@dataclass
class DPoPIdp(FakeIdp):
    """`FakeIdp` advertising DPoP, verifying every token request's proof with the server's
    checks, binding tokens to the proof's key; with `nonces`, a nonce is required (§8)."""

    dpop_algs: list[str] | None = field(default_factory=lambda: ["ES256", "PS256"])
    nonces: NonceSource | None = None
    rotate: bool = False  # a new nonce every time: the client must still retry only once
    jkts: list[str | None] = field(default_factory=list)

    def metadata(self) -> dict[str, Any]:
        doc = super().metadata()
        if self.dpop_algs is not None:
            doc["dpop_signing_alg_values_supported"] = self.dpop_algs
        return doc

    def _refuse(self, error: DPoPError) -> httpx.Response:
        headers = {}
        if isinstance(error, NonceRequired):
            assert self.nonces is not None
            now = time.time() + (len(self.requests) * 600 if self.rotate else 0)
            headers["DPoP-Nonce"] = self.nonces.current(now)
        body = {"error": error.error, "error_description": error.description}
        return httpx.Response(400, json=body, headers=headers)

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.path != "/oauth2/v1/token":
            return super().handler(request)
        try:
            proof = proof_from_headers(request.headers.get_list("DPoP"))
            checked = None
            if proof is not None:
                checked = verify_proof(proof, method="POST", url=str(request.url), nonces=self.nonces)
        except DPoPError as exc:
            self.requests.append((request.url.path, {}, dict(request.headers)))
            return self._refuse(exc)
        answer = super().handler(request)
        self.jkts.append(None if checked is None else checked.jkt)
        if checked is None or answer.status_code != 200:
            return answer
        body = json.loads(answer.content)
        body["token_type"] = "DPoP"
        claims = {"sub": "u1", "n": len(self.jkts), "cnf": {"jkt": checked.jkt}}
        body["access_token"] = fake_jwt(claims)
        return httpx.Response(200, json=body)


def run_login(tmp_path: Path, idp: FakeIdp, **kwargs: Any) -> tuple[Session, UserAgent]:
    agent = UserAgent(idp)
    session = login(
        ISSUER,
        "cli",
        opener=agent,
        cache=TokenCache(tmp_path),
        http=idp.client(),
        timeout=5,
        **kwargs,
    )
    return session, agent


def token_headers(idp: FakeIdp) -> list[dict[str, str]]:
    return idp.headers("/oauth2/v1/token")


def test_login_binds_the_tokens_to_a_new_key_named_in_the_pushed_request(tmp_path: Path) -> None:
    idp = DPoPIdp(par=True)
    session, _ = run_login(tmp_path, idp)
    signer = session.dpop
    assert signer is not None
    assert session.tokens.token_type == "DPoP"
    [pushed] = idp.calls("/oauth2/v1/par")
    assert pushed["dpop_jkt"] == signer.jkt  # §10: the code is bound to the key too
    assert idp.jkts == [signer.jkt]
    [exchange] = token_headers(idp)
    header, claims = parts(exchange["dpop"])
    assert (claims["htm"], claims["htu"]) == ("POST", TOKEN)
    assert "d" not in header["jwk"]


def test_a_plain_authorization_request_names_the_key_in_its_query(tmp_path: Path) -> None:
    idp = DPoPIdp()
    session, agent = run_login(tmp_path, idp, par=False)
    [url] = agent.urls
    assert session.dpop is not None
    assert parse_qs(urlsplit(url).query)["dpop_jkt"] == [session.dpop.jkt]


def test_the_key_is_cached_0600_and_a_refresh_signs_with_it(tmp_path: Path) -> None:
    idp = DPoPIdp()
    first, _ = run_login(tmp_path, idp)
    assert first.dpop is not None
    jkt = first.dpop.jkt
    path = first.cache.path_for(ISSUER, "cli", "default")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = json.loads(path.read_text())
    assert stored["tokens"]["token_type"] == "DPoP"
    assert set(stored["dpop_key"]) == {"kty", "crv", "x", "y", "d"}

    # Another process: the key is read back from the cache and signs the refresh.
    later = Session.load("default", cache=TokenCache(tmp_path), http=idp.client())
    assert later.dpop is not None and later.dpop.jkt == jkt
    later.refresh()
    assert idp.jkts == [jkt, jkt]
    assert later.tokens.token_type == "DPoP"
    refresh_proof = token_headers(idp)[-1]["dpop"]
    assert verify_proof(refresh_proof, method="POST", url=TOKEN, max_age=3600).jkt == jkt


def test_a_use_dpop_nonce_answer_is_retried_once_with_the_nonce(tmp_path: Path) -> None:
    idp = DPoPIdp(nonces=NonceSource(NONCE_SECRET))
    session, _ = run_login(tmp_path, idp)
    assert session.tokens.token_type == "DPoP"
    first, second = token_headers(idp)
    assert "nonce" not in parts(first["dpop"])[1]
    assert parts(second["dpop"])[1]["nonce"] == idp.nonces.current(time.time())  # type: ignore[union-attr]
    # The nonce is remembered: the refresh sends it at once, one request.
    session.refresh()
    assert len(token_headers(idp)) == 3
    assert "nonce" in parts(token_headers(idp)[-1]["dpop"])[1]


def test_a_server_that_keeps_asking_for_a_nonce_gets_two_requests_not_a_loop(
    tmp_path: Path,
) -> None:
    idp = DPoPIdp(nonces=NonceSource(NONCE_SECRET), rotate=True)
    with pytest.raises(OAuthResponseError) as caught:
        run_login(tmp_path, idp)
    assert caught.value.error == "use_dpop_nonce"
    assert len(token_headers(idp)) == 2
    assert not (tmp_path / "tokens" / "default").exists() or not list(
        (tmp_path / "tokens" / "default").glob("*.json")
    )


@pytest.mark.parametrize(
    ("idp", "kwargs"),
    [
        (DPoPIdp(), {"dpop": False}),  # --no-dpop
        (DPoPIdp(dpop_algs=None), {}),  # the server does not offer DPoP
        (DPoPIdp(dpop_algs=["PS256"]), {}),  # nor ES256 proofs
    ],
    ids=["turned off", "not offered", "no ES256"],
)
def test_without_dpop_the_login_gets_bearer_tokens_and_keeps_no_key(
    tmp_path: Path, idp: DPoPIdp, kwargs: dict[str, Any]
) -> None:
    session, agent = run_login(tmp_path, idp, par=False, **kwargs)
    assert session.dpop is None
    assert session.tokens.token_type == "Bearer"
    assert "dpop" not in token_headers(idp)[0]
    assert "dpop_jkt" not in parse_qs(urlsplit(agent.urls[0]).query)
    stored = json.loads(session.cache.path_for(ISSUER, "cli", "default").read_text())
    assert stored["dpop_key"] is None


def test_a_dpop_token_the_client_did_not_ask_for_is_refused() -> None:
    data = {"access_token": "at", "token_type": "DPoP"}
    with pytest.raises(ClientError, match="without a DPoP proof"):
        TokenSet.from_response(data, 0.0)
    assert TokenSet.from_response(data, 0.0, dpop=True).token_type == "DPoP"
    assert TokenSet.from_response({**data, "token_type": "bearer"}, 0.0, dpop=True).is_dpop is False


def test_a_cached_dpop_token_without_its_key_is_a_corrupted_cache(tmp_path: Path) -> None:
    cache = TokenCache(tmp_path)
    path = cache.save(entry(TokenSet("at", token_type="DPoP"), DPoPKey.generate()))
    data = json.loads(path.read_text())
    data["dpop_key"] = None
    path.write_text(json.dumps(data))
    with pytest.raises(CacheError, match="without its DPoP key"):
        cache.read(path)
    data["dpop_key"] = {"kty": "EC", "crv": "P-256", "x": "a", "y": "b"}  # no d
    path.write_text(json.dumps(data))
    with pytest.raises(CacheError, match="not a private JWK"):
        cache.read(path)


# --- calling an API ------------------------------------------------------------------------


def entry(tokens: TokenSet, key: DPoPKey | None) -> CacheEntry:
    return CacheEntry("default", "cli", ENDPOINTS, tokens, dpop_key=key)


@dataclass
class Api:
    """A DPoP-protected API: checks `Authorization: DPoP`, the proof with `ath`, and (with
    `nonces`) its nonce, answering the §9 challenge."""

    key: DPoPKey
    nonces: NonceSource | None = None
    rotate: bool = False
    seen: list[httpx.Request] = field(default_factory=list)

    def challenge(self, error: DPoPError) -> httpx.Response:
        headers = {"WWW-Authenticate": f'DPoP algs="ES256", error="{error.error}"'}
        if isinstance(error, NonceRequired) and self.nonces is not None:
            headers["DPoP-Nonce"] = self.nonces.current(time.time() + 600 * len(self.seen) * self.rotate)
        return httpx.Response(401, headers=headers)

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme != "DPoP":
            return httpx.Response(401, headers={"WWW-Authenticate": 'DPoP algs="ES256"'})
        try:
            proof = proof_from_headers(request.headers.get_list("DPoP"))
            assert proof is not None
            checked = verify_proof(
                proof,
                method=request.method,
                url=str(request.url),
                access_token=token,
                nonces=self.nonces,
            )
        except DPoPError as exc:
            return self.challenge(exc)
        assert checked.jkt == self.key.thumbprint()  # cnf.jkt
        return httpx.Response(200, json={"ok": True, "body": request.content.decode()})


def dpop_session(tmp_path: Path, api: Api | None = None) -> tuple[Session, Api]:
    key = DPoPKey.generate()
    api = api or Api(key)
    api.key = key
    cache = TokenCache(tmp_path)
    cache.save(entry(TokenSet("at-1", token_type="DPoP", expires_at=time.time() + 3600), key))
    return Session.load("default", cache=cache, http=FakeIdp().client()), api


def test_a_dpop_token_is_sent_with_a_proof_carrying_ath(tmp_path: Path) -> None:
    session, api = dpop_session(tmp_path)
    with httpx.Client(auth=session.auth(), transport=httpx.MockTransport(api.handler)) as http:
        answer = http.post(f"{API}?x=1", json={"a": 1})
    assert answer.status_code == 200
    [request] = api.seen
    assert request.headers["Authorization"] == "DPoP at-1"
    _, claims = parts(request.headers["DPoP"])
    assert (claims["htm"], claims["htu"]) == ("POST", API)


def test_a_nonce_challenge_is_retried_once_and_the_nonce_kept(tmp_path: Path) -> None:
    session, api = dpop_session(tmp_path, Api(DPoPKey.generate(), NonceSource(NONCE_SECRET)))
    with httpx.Client(auth=session.auth(), transport=httpx.MockTransport(api.handler)) as http:
        assert http.post(API, content=b"body").status_code == 200
        assert len(api.seen) == 2
        assert api.seen[1].content == b"body"  # the retry sends the body again
        assert http.get(API).status_code == 200  # the nonce is known now: no retry
    assert len(api.seen) == 3
    assert parts(api.seen[2].headers["DPoP"])[1]["nonce"] == parts(api.seen[1].headers["DPoP"])[1]["nonce"]


def test_an_api_that_keeps_asking_for_a_nonce_gets_two_requests_and_no_refresh(
    tmp_path: Path,
) -> None:
    api = Api(DPoPKey.generate(), NonceSource(NONCE_SECRET), rotate=True)
    session, api = dpop_session(tmp_path, api)
    with httpx.Client(auth=session.auth(), transport=httpx.MockTransport(api.handler)) as http:
        answer = http.get(API)
    assert answer.status_code == 401
    assert len(api.seen) == 2
    assert session.refreshed is False  # a new token would not cure a proof problem


def test_async_calls_retry_with_the_nonce_too(tmp_path: Path) -> None:
    session, api = dpop_session(tmp_path, Api(DPoPKey.generate(), NonceSource(NONCE_SECRET)))

    async def call() -> int:
        transport = httpx.MockTransport(api.handler)
        async with httpx.AsyncClient(auth=session.auth(), transport=transport) as http:
            return (await http.get(API)).status_code

    assert asyncio.run(call()) == 200
    assert len(api.seen) == 2


def test_a_bearer_login_sends_no_proof(tmp_path: Path) -> None:
    cache = TokenCache(tmp_path)
    cache.save(entry(TokenSet("at-b", expires_at=time.time() + 3600), None))
    session = Session.load("default", cache=cache)
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    with httpx.Client(auth=session.auth(), transport=httpx.MockTransport(handler)) as http:
        http.get(API)
    assert seen[0].headers["Authorization"] == "Bearer at-b"
    assert "DPoP" not in seen[0].headers


def test_a_step_up_challenge_in_the_dpop_scheme_is_recognised() -> None:
    value = 'DPoP algs="ES256", error="insufficient_user_authentication", acr_values="urn:x:mfa"'
    found = step_up_challenge(response(401, API, **{"WWW-Authenticate": value}))
    assert found is not None and found.acr_values == ("urn:x:mfa",)


def test_a_step_up_signs_in_again_with_the_same_key(tmp_path: Path) -> None:
    idp = DPoPIdp(par=True)
    session, agent = run_login(tmp_path, idp)
    assert session.dpop is not None
    jkt, first = session.dpop.jkt, session.tokens.access_token
    challenge = 'DPoP algs="ES256", error="insufficient_user_authentication", acr_values="mfa"'

    def handler(request: httpx.Request) -> httpx.Response:
        token = request.headers["Authorization"].removeprefix("DPoP ")
        proof = request.headers["DPoP"]
        assert verify_proof(proof, method="GET", url=API, access_token=token).jkt == jkt
        if token == first:
            return httpx.Response(401, headers={"WWW-Authenticate": challenge})
        return httpx.Response(200)

    with httpx.Client(transport=httpx.MockTransport(handler), auth=session.auth()) as http:
        assert http.get(API).status_code == 200
    assert session.tokens.access_token != first
    assert session.tokens.is_dpop
    assert [p["dpop_jkt"] for p in idp.calls("/oauth2/v1/par")] == [jkt, jkt]
    assert idp.jkts == [jkt, jkt]  # the step-up's code exchange: the same key
    assert len(agent.urls) == 2
