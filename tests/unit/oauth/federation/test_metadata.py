"""Discovery (OIDC Discovery 1.0 §3, §4.3), the endpoint rule (https; http only on loopback for a
development node), the client's caches and the token request's client authentication (RFC 6749
§2.3.1, RFC 7523 §2.2), against the provider on 127.0.0.1."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from tessera.oauth.client_assertion import verify_client_assertion
from tessera.oauth.client_jwks import parse_jwks
from tessera.oauth.federation.errors import UpstreamError
from tessera.oauth.federation.metadata import (
    ProviderMetadata,
    UpstreamClient,
    check_endpoint,
    discovery_url,
    parse_metadata,
)
from tessera.oauth.federation.secrets import (
    Credentials,
    client_jwks,
    credentials_for,
    new_client_key,
    seal_secret,
)
from tessera.store.memory import MemoryStore
from tests.unit.oauth.federation.conftest import (
    REDIRECT_URI,
    T0,
    Answer,
    Ticks,
    UpstreamOP,
    make_provider,
)

ISSUER = "https://op.example"
DOCUMENT: dict[str, Any] = {
    "issuer": ISSUER,
    "authorization_endpoint": f"{ISSUER}/authorize",
    "token_endpoint": f"{ISSUER}/token",
    "jwks_uri": f"{ISSUER}/jwks",
    "userinfo_endpoint": f"{ISSUER}/userinfo",
    "end_session_endpoint": f"{ISSUER}/logout",
    "response_types_supported": ["code", "id_token"],
    "id_token_signing_alg_values_supported": ["RS256", "HS256", "none"],
    "code_challenge_methods_supported": ["S256"],
    "authorization_response_iss_parameter_supported": True,
}


def test_a_discovery_document_gives_the_metadata() -> None:
    found = parse_metadata(ISSUER, DOCUMENT)
    assert found == ProviderMetadata(
        issuer=ISSUER,
        authorization_endpoint=f"{ISSUER}/authorize",
        token_endpoint=f"{ISSUER}/token",
        jwks_uri=f"{ISSUER}/jwks",
        userinfo_endpoint=f"{ISSUER}/userinfo",
        end_session_endpoint=f"{ISSUER}/logout",
        iss_parameter_supported=True,
        id_token_signing_alg_values_supported=("RS256", "HS256", "none"),
        token_endpoint_auth_methods_supported=("client_secret_basic",),  # §3's default
        code_challenge_methods_supported=("S256",),
    )
    minimal = {k: DOCUMENT[k] for k in ("issuer", "authorization_endpoint", "token_endpoint")}
    minimal |= {"jwks_uri": DOCUMENT["jwks_uri"], "id_token_signing_alg_values_supported": ["ES256"]}
    lean = parse_metadata(ISSUER, minimal)
    assert (lean.userinfo_endpoint, lean.iss_parameter_supported) == (None, False)
    assert discovery_url("https://op.example/tenant/") == (
        "https://op.example/tenant/.well-known/openid-configuration"
    )


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"issuer": "https://op.example/"}, "names issuer"),  # §4.3: exactly
        ({"issuer": "https://evil.example"}, "names issuer"),
        ({"issuer": None}, "names issuer"),
        ({"token_endpoint": None}, "no token_endpoint"),
        ({"authorization_endpoint": None}, "no authorization_endpoint"),
        ({"jwks_uri": None}, "no jwks_uri"),
        ({"id_token_signing_alg_values_supported": None}, "id_token_signing_alg_values"),
        ({"id_token_signing_alg_values_supported": ["HS256", "none"]}, "none of the algorithms"),
        ({"id_token_signing_alg_values_supported": "RS256"}, "not a string array"),
        ({"response_types_supported": ["id_token"]}, "code flow"),
        ({"token_endpoint": "http://op.example/token"}, "must be an https URL"),
        ({"userinfo_endpoint": "http://127.0.0.1/userinfo"}, "must be an https URL"),
        ({"jwks_uri": "https://user:pw@op.example/jwks"}, "no user info"),
        ({"authorization_endpoint": "https://op.example/a#frag"}, "fragment"),
        ({"token_endpoint": "https://op.example/\u00e9"}, "non-ASCII"),
        ({"token_endpoint": 5}, "not a string"),
    ],
)
def test_a_bad_discovery_document_is_refused(changes: dict[str, Any], match: str) -> None:
    document = {k: v for k, v in (DOCUMENT | changes).items() if v is not None}
    with pytest.raises(UpstreamError, match=match) as caught:
        parse_metadata(ISSUER, document)
    assert caught.value.reason == "The sign-in provider is not set up correctly. Tell an administrator."


def test_http_is_accepted_only_on_loopback_when_allowed() -> None:
    for url in ("http://127.0.0.1:9000/x", "http://localhost/x", "http://[::1]:8/x"):
        assert check_endpoint(url, "issuer", allow_insecure_loopback=True) == url
        with pytest.raises(UpstreamError, match="https"):
            check_endpoint(url, "issuer")
    with pytest.raises(UpstreamError, match="https"):
        check_endpoint("http://op.example/x", "issuer", allow_insecure_loopback=True)
    with pytest.raises(UpstreamError, match="https"):
        check_endpoint("ftp://op.example/x", "issuer", allow_insecure_loopback=True)
    assert parse_metadata(ISSUER, DOCUMENT, allow_insecure_loopback=True).issuer == ISSUER


# --- the client against the provider on loopback -----------------------------------------------


def test_discovery_is_cached_and_a_failure_is_retried_only_after_a_while(
    op: UpstreamOP, client: UpstreamClient, ticks: Ticks
) -> None:
    assert client.metadata(op.base).token_endpoint == f"{op.base}/token"
    client.metadata(op.base)
    assert op.hits("/.well-known/openid-configuration") == 1
    ticks.now += 601  # ten minutes later: fetched again
    op.discovery["issuer"] = "http://127.0.0.1:1"  # and now wrong
    with pytest.raises(UpstreamError, match="names issuer"):
        client.metadata(op.base)
    with pytest.raises(UpstreamError, match="names issuer"):
        client.metadata(op.base, refresh=True)  # the same failure, not asked again
    assert op.hits("/.well-known/openid-configuration") == 2
    op.discovery["issuer"] = op.base
    ticks.now += 11
    assert client.metadata(op.base).issuer == op.base
    assert op.hits("/.well-known/openid-configuration") == 3


def test_an_unreachable_or_redirecting_provider_is_refused(
    op: UpstreamOP, client: UpstreamClient
) -> None:
    with pytest.raises(UpstreamError, match="ConnectError") as caught:
        client.metadata("http://127.0.0.1:9")
    assert caught.value.reason.startswith("The sign-in provider cannot be reached")
    with pytest.raises(UpstreamError, match="answered 404"):
        client.metadata(op.base + "/elsewhere")
    with pytest.raises(UpstreamError, match="answered 302"):  # redirects are not followed
        client.metadata(op.base + "/moved")
    with pytest.raises(UpstreamError, match="no user info"):
        client.metadata("https://user@op.example")


def test_an_oversize_answer_is_cut_off(op: UpstreamOP, client: UpstreamClient) -> None:
    op.discovery["padding"] = "x" * (300 * 1024)
    with pytest.raises(UpstreamError, match="larger than"):
        client.metadata(op.base)


def test_keys_come_through_the_nodes_jwks_fetcher(op: UpstreamOP, client: UpstreamClient) -> None:
    metadata = client.metadata(op.base)
    assert client.keys(metadata).keys[0].kid == "up-1"
    assert op.hits("/jwks") == 1
    op.jwks = {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}  # a symmetric key: refused
    with pytest.raises(UpstreamError, match="symmetric") as caught:
        client.keys(replace(metadata, jwks_uri=f"{op.base}/jwks?another-uri"))
    assert caught.value.reason.startswith("The sign-in provider cannot be reached")


def token_request(op: UpstreamOP, client: UpstreamClient, provider: Any, credentials: Any) -> None:
    op.token = Answer(body={"access_token": "at", "token_type": "bearer", "id_token": "x.y.z"})
    answer = client.token(
        client.metadata(op.base),
        provider,
        credentials,
        code="c-1",
        redirect_uri=REDIRECT_URI,
        code_verifier="v" * 43,
        now=T0,
    )
    assert answer["access_token"] == "at"


def test_client_secret_post_sends_id_and_secret_in_the_body(
    op: UpstreamOP, client: UpstreamClient
) -> None:
    key = b"k" * 32
    provider = make_provider(op.base, auth_method="client_secret_post")
    provider = replace(provider, secret_sealed=seal_secret(key, provider.id, "s3cret"))
    token_request(op, client, provider, credentials_for(key, provider))
    headers, form = op.last("/token")
    assert "authorization" not in headers
    assert (form["client_id"], form["client_secret"]) == (provider.client_id, "s3cret")


def test_private_key_jwt_assertions_are_what_tessera_itself_accepts(
    op: UpstreamOP, client: UpstreamClient, store: MemoryStore
) -> None:
    key = b"k" * 32
    sealed, kid = new_client_key(key, "up_corp")
    provider = make_provider(
        op.base, auth_method="private_key_jwt", private_key_sealed=sealed, key_id=kid
    )
    token_request(op, client, provider, credentials_for(key, provider))
    _, form = op.last("/token")
    assert form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    assert form["client_id"] == provider.client_id and "client_secret" not in form
    # Our own verifier, as a Tessera upstream would run it (aud: the issuer, exactly).
    claims = verify_client_assertion(
        form["client_assertion"],
        client_id=provider.client_id,
        audiences={op.base},
        now=int(T0.timestamp()),
        use_jti=lambda k, until: store.nonces.use_once(k, T0 + timedelta(seconds=300), T0),
        keys=parse_jwks(client_jwks(key, provider)),
        exact_audience=op.base,
    )
    assert claims["aud"] == op.base and claims["exp"] - claims["iat"] == 60


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ({"token_type": "Bearer", "id_token": "x.y.z"}, "no access_token"),
        # Not ASCII: it could not be sent to the userinfo endpoint (an encoding error, a 500).
        ({"access_token": "caf\u00e9", "token_type": "Bearer", "id_token": "x.y.z"}, "%x20-7E"),
        ({"access_token": "at", "token_type": "DPoP", "id_token": "x.y.z"}, "not Bearer"),
        ({"access_token": "at", "token_type": "Bearer"}, "no id_token"),
        ([1, 2], "without JSON"),
    ],
)
def test_a_token_response_without_what_we_need_is_refused(
    op: UpstreamOP, client: UpstreamClient, body: Any, match: str
) -> None:
    op.token = Answer(body=body)
    with pytest.raises(UpstreamError, match=match):
        client.token(
            client.metadata(op.base),
            make_provider(op.base),
            Credentials(client_secret="s"),
            code="c",
            redirect_uri=REDIRECT_URI,
            code_verifier="v" * 43,
            now=T0,
        )
