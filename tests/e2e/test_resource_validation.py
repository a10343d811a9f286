"""`tessera.resource` at a real resource server: the integration service in its own process
(`tessera integration serve`) in front of the real identity domain, both on loopback.

docs/security.md rule 19 end to end (and issue 4, "Must show"): a user's token from the authorization
code flow works; no token is 401 with a Bearer challenge; expired, tampered, wrong-audience,
`alg: none` and HMAC-signed-with-the-public-key tokens are 401 `invalid_token`; a missing scope
is 403 `insufficient_scope` with `scope=`; a key rotation at the identity domain breaks nothing.
"""

from __future__ import annotations

import base64
import hmac
import json
import signal
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Iterator
from importlib import resources
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Security
from joserfc.jwk import RSAKey
from joserfc.jws import JWSRegistry
from starlette.exceptions import StarletteDeprecationWarning

from tessera.resource import AccessToken, RevocationFeed, TokenValidator
from tessera.resource.fastapi import TokenDependency
from tessera.shared.integration_roles import SERVICE_MONITOR
from tests.support.flow import demo_auth, user_tokens
from tests.support.integration import Service, bearer, client_token, new_app, running_service
from tests.support.server import Server, create_resource, running_server

with warnings.catch_warnings():  # Starlette 1.x nudges towards httpx2; httpx is what we have
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

AUDIENCE = "https://integration.tessera.test"
ALL = "urn:opc:resource:consumer::all"
MONITOR = "urn:tessera:integration:monitor"
SAMPLE = "ECHO_ORDER|01.00.0000"
INSTANCE_SCOPE = f"{AUDIENCE}:443{ALL}"


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def service(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with running_service(server, tmp_path_factory.mktemp("resource-validation")) as svc:
        yield svc


@pytest.fixture(scope="module")
def sample(server: Server, service: Service) -> str:
    """The sample integration (`samples/echo_order.yaml`), deployed and activated."""
    # Deploying needs the manage scope (the consumer scope only reads and runs).
    token = client_token(server, demo_auth(server), server.demo["resource"]["manage_scope"])
    text = resources.files("tessera.integration").joinpath("samples/echo_order.yaml").read_text()
    created = httpx.post(
        service.url("/integrations"),
        content=text.encode(),
        headers={**bearer(token), "Content-Type": "application/yaml"},
    )
    assert created.status_code == 201, created.text
    activated = httpx.post(service.url(f"/integrations/{SAMPLE}/activate"), headers=bearer(token))
    assert activated.status_code == 200, activated.text
    return SAMPLE


def user_token(server: Server, scope: str = INSTANCE_SCOPE) -> str:
    """alice's access token from the authorization code flow with the demo confidential app."""
    alice = server.demo["user"]
    tokens = user_tokens(
        server,
        alice["username"],
        alice["password"],
        scope=f"openid profile {scope}",
        state=uuid.uuid4().hex,
        nonce=uuid.uuid4().hex,
    )
    return str(tokens["access_token"])


@pytest.fixture(scope="module")
def alice_token(server: Server) -> str:
    return user_token(server)


# --- JOSE helpers ------------------------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64(segment: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def header_of(token: str) -> dict[str, Any]:
    return dict(unb64(token.split(".")[0]))


def claims_of(token: str) -> dict[str, Any]:
    return dict(unb64(token.split(".")[1]))


def jwks(server: Server) -> list[dict[str, Any]]:
    response = httpx.get(f"{server.issuer}/oauth2/v1/keys")
    assert response.status_code == 200
    return list(response.json()["keys"])


def mint_with_the_domains_key(server: Server, claims: dict[str, Any]) -> str:
    """Sign `claims` as an access token with the identity domain's own ACTIVE ES256 key, read
    from its key store the way the admin CLI does (for claims the token endpoint never issues,
    such as an expiry in the past)."""
    script = (
        "import json, sys\n"
        "from tessera.cli.common import open_domain\n"
        "claims = json.loads(sys.stdin.read())\n"
        "with open_domain(True) as ctx:\n"
        "    print(ctx.keys.sign('ES256', claims, typ='at+jwt'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=server.env,
        input=json.dumps(claims),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def assert_invalid_token(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert 'error="invalid_token"' in challenge
    assert response.json()["error"] == "invalid_token"


# --- tests -------------------------------------------------------------------------------------


def test_a_users_token_from_the_code_flow_calls_the_management_api_and_a_sample_integration(
    server: Server, service: Service, sample: str, alice_token: str
) -> None:
    claims = claims_of(alice_token)
    assert claims["sub_type"] == "user" and claims["aud"] == AUDIENCE
    assert ALL in claims["scope"].split()

    listing = httpx.get(service.url("/integrations"), headers=bearer(alice_token))
    assert listing.status_code == 200, listing.text
    assert sample in {item["id"] for item in listing.json()["items"]}

    response = httpx.post(
        service.url("/flows/rest/ECHO_ORDER/01.00.0000/orders/42"),
        json={"lines": [{"sku": "A-1", "qty": 2}]},
        headers=bearer(alice_token),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["orderId"] == "42" and body["lineCount"] == 1
    assert body["requestedBy"] == {
        "sub": server.demo["user"]["sub"],
        "type": "user",
        "client": server.demo["confidential_app"]["client_id"],
        "name": "Alice Example",
    }


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/integrations"),
        ("POST", "/integrations"),
        ("GET", "/monitoring/instances"),
        ("POST", "/flows/rest/ECHO_ORDER/01.00.0000/orders/42"),
    ],
)
def test_no_token_is_401_with_a_bearer_challenge(
    service: Service, sample: str, method: str, path: str
) -> None:
    response = httpx.request(method, service.url(path), json={})
    assert response.status_code == 401, response.text
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert "error=" not in challenge  # RFC 6750 §3.1: the request carried no credentials


def test_an_expired_token_is_401_invalid_token(
    server: Server, service: Service, alice_token: str
) -> None:
    now = int(time.time())
    claims = claims_of(alice_token)
    claims.update(jti=uuid.uuid4().hex, iat=now - 900, nbf=now - 900)
    # Control: the same claims, signed the same way but not expired, are accepted.
    fresh = mint_with_the_domains_key(server, {**claims, "exp": now + 300})
    assert header_of(fresh)["kid"] == header_of(alice_token)["kid"]
    assert httpx.get(service.url("/integrations"), headers=bearer(fresh)).status_code == 200
    # Expired beyond the validator's 30 s clock-skew allowance.
    expired = mint_with_the_domains_key(
        server, {**claims, "jti": uuid.uuid4().hex, "exp": now - 120}
    )
    response = httpx.get(service.url("/integrations"), headers=bearer(expired))
    assert_invalid_token(response)
    assert "expired" in response.headers["www-authenticate"]


def test_a_tampered_token_is_401_invalid_token(service: Service, alice_token: str) -> None:
    head, payload, signature = alice_token.split(".")
    claims = claims_of(alice_token)
    forged_payloads = [
        {**claims, "scope": f"{claims['scope']} urn:tessera:admin"},
        {**claims, "sub": "someone-else"},
        {**claims, "exp": claims["exp"] + 86400},
    ]
    tampered = [f"{head}.{b64url(json.dumps(c).encode())}.{signature}" for c in forged_payloads]
    flipped = signature[:20] + ("A" if signature[20] != "A" else "B") + signature[21:]
    tampered += [
        f"{head}.{payload}.{flipped}",
        f"{head}.{payload}.",
        f"{head}.{payload}.{signature[:-4]}",
    ]
    for token in tampered:
        assert_invalid_token(httpx.get(service.url("/integrations"), headers=bearer(token)))
    # The untampered original still works.
    assert httpx.get(service.url("/integrations"), headers=bearer(alice_token)).status_code == 200


def test_a_token_for_another_audience_is_401_invalid_token(
    server: Server, service: Service
) -> None:
    other = "https://ledger.tessera.test"
    resource = create_resource(server, "Ledger API", other, ALL)
    assert resource["audience"] == other
    app = new_app(server, "Ledger client", f"{other}:443{ALL}")
    token = client_token(server, app, f"{other}:443{ALL}")
    claims = claims_of(token)
    assert claims["aud"] == other and ALL in claims["scope"].split()  # same scope name
    response = httpx.get(service.url("/integrations"), headers=bearer(token))
    assert_invalid_token(response)
    assert "audience" in response.headers["www-authenticate"]


def test_an_alg_none_token_is_401_invalid_token(service: Service, alice_token: str) -> None:
    _, payload, signature = alice_token.split(".")
    kid = header_of(alice_token)["kid"]
    for alg in ("none", "None", "NONE"):
        unsigned = b64url(json.dumps({"alg": alg, "typ": "at+jwt", "kid": kid}).encode())
        for token in (f"{unsigned}.{payload}.", f"{unsigned}.{payload}.{signature}"):
            assert_invalid_token(httpx.get(service.url("/integrations"), headers=bearer(token)))


def test_an_hmac_token_signed_with_the_public_key_is_401_invalid_token(
    server: Server, service: Service, alice_token: str
) -> None:
    # Algorithm confusion: the identity domain's published RSA key, as PEM, used as an HS256
    # secret, with that key's kid; the payload is a genuine token's, with a wider scope.
    rsa_keys = [k for k in jwks(server) if k["kty"] == "RSA"]
    assert rsa_keys
    claims = {**claims_of(alice_token), "jti": uuid.uuid4().hex}
    for jwk in rsa_keys:
        public = RSAKey.import_key(jwk)
        assert public.kid == jwk["kid"] and jwk["alg"] == "RS256"
        for alg in ("HS256", "HS512"):
            header = {"alg": alg, "typ": "at+jwt", "kid": jwk["kid"]}
            signing_input = (
                f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
            )
            digest = "sha256" if alg == "HS256" else "sha512"
            signature = hmac.new(
                public.as_pem(private=False), signing_input.encode(), digest
            ).digest()
            token = f"{signing_input}.{b64url(signature)}"
            assert_invalid_token(httpx.get(service.url("/integrations"), headers=bearer(token)))
    assert "HS256" in JWSRegistry.algorithms  # the attacker's tooling would happily do this


def test_a_monitor_only_token_calling_a_write_is_403_insufficient_scope(
    server: Server, service: Service, sample: str
) -> None:
    monitor = new_app(
        server, "Monitoring dashboard", f"{AUDIENCE}:443{MONITOR}", roles=(SERVICE_MONITOR,)
    )
    token = client_token(server, monitor, f"{AUDIENCE}:443{MONITOR}")
    assert claims_of(token)["scope"] == MONITOR
    # The token itself is valid: reads work.
    assert httpx.get(service.url("/integrations"), headers=bearer(token)).status_code == 200

    writes = [
        ("POST", "/integrations", {"code": "SNEAKY", "version": "01.00.0000"}),
        ("POST", f"/integrations/{sample}/deactivate", None),
        ("DELETE", f"/integrations/{sample}", None),
    ]
    for method, path, body in writes:
        response = httpx.request(method, service.url(path), json=body, headers=bearer(token))
        assert response.status_code == 403, (path, response.text)
        challenge = response.headers["www-authenticate"]
        assert challenge.startswith("Bearer ")
        assert 'error="insufficient_scope"' in challenge
        assert 'scope="urn:tessera:integration:manage"' in challenge  # writes need manage
        assert response.json()["error"] == "insufficient_scope"
    # Nothing was changed.
    shown = httpx.get(service.url(f"/integrations/{sample}"), headers=bearer(token))
    assert shown.json()["state"] == "activated"


def test_a_key_rotation_at_the_identity_domain_does_not_break_validation(
    server: Server, service: Service, sample: str
) -> None:
    demo = demo_auth(server)
    old_token = client_token(server, demo, INSTANCE_SCOPE)
    unused_old_token = user_token(server)  # issued before the rotation, first used after it
    old_kid = header_of(old_token)["kid"]
    assert header_of(unused_old_token)["kid"] == old_kid
    assert httpx.get(service.url("/integrations"), headers=bearer(old_token)).status_code == 200
    published_before = {k["kid"] for k in jwks(server)}

    rotated = {r["alg"]: r for r in server.cli_json("admin", "keys", "rotate")}
    new_kid = rotated["ES256"]["active"]
    assert new_kid != old_kid
    assert new_kid in published_before  # the next key was published before it signed

    # The identity domain picks the rotation up from its key store within its reload interval.
    deadline = time.monotonic() + 30
    new_token = client_token(server, demo, INSTANCE_SCOPE)
    while header_of(new_token)["kid"] != new_kid:
        assert time.monotonic() < deadline, "the identity domain never signed with the new key"
        time.sleep(0.5)
        new_token = client_token(server, demo, INSTANCE_SCOPE)

    published_after = {k["kid"] for k in jwks(server)}
    assert {old_kid, new_kid, rotated["ES256"]["next"]} <= published_after

    for token in (new_token, old_token, unused_old_token):
        response = httpx.get(service.url("/integrations"), headers=bearer(token))
        assert response.status_code == 200, (header_of(token)["kid"], response.text)
    response = httpx.post(
        service.url("/flows/rest/ECHO_ORDER/01.00.0000/orders/7"),
        json={},
        headers=bearer(new_token),
    )
    assert response.status_code == 200, response.text
    # And a user's token from the code flow after the rotation.
    after = user_token(server)
    assert header_of(after)["kid"] == new_kid
    assert httpx.get(service.url("/integrations"), headers=bearer(after)).status_code == 200


# --- a stale revocation feed (issue 12) --------------------------------------------------------


def wait_for_state(feed: RevocationFeed, state: str, what: str) -> None:
    deadline = time.monotonic() + 60
    while feed.state != state:
        assert time.monotonic() < deadline, f"{what} (feed {feed.state}, {feed.last_error})"
        time.sleep(0.1)


def test_a_stale_revocation_feed_fails_closed_instead_of_open_and_recovers(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """A resource server follows the feed of a real identity domain that is then frozen
    (SIGSTOP): once the feed is older than `max_staleness`, an already validated token is
    refused with 503 (a revocation it cannot hear of may have happened); after SIGCONT the
    feed answers again and the same token is accepted."""
    with running_server(tmp_path_factory.mktemp("stale-feed")) as idp:
        token = client_token(idp, demo_auth(idp), INSTANCE_SCOPE)
        feed = RevocationFeed(idp.issuer, *demo_auth(idp), wait_seconds=1, max_staleness=3).start()
        try:
            validator = TokenValidator(idp.issuer, AUDIENCE, revocation=feed)
            app = FastAPI()
            require_token = TokenDependency(validator)

            @app.get("/orders")
            def orders(token: AccessToken = Security(require_token, scopes=[ALL])) -> str:
                return token.subject

            with TestClient(app) as client:
                assert feed.state == "fresh", feed.last_error
                assert client.get("/orders", headers=bearer(token)).status_code == 200
                idp.proc.send_signal(signal.SIGSTOP)
                try:
                    wait_for_state(feed, "stale", "the feed never noticed the frozen domain")
                    refused = client.get("/orders", headers=bearer(token))
                    assert refused.status_code == 503, refused.text
                    assert refused.json()["detail"]["error"] == "temporarily_unavailable"
                    assert int(refused.headers["Retry-After"]) >= 1
                finally:
                    idp.proc.send_signal(signal.SIGCONT)
                wait_for_state(feed, "fresh", "the feed did not recover")
                assert client.get("/orders", headers=bearer(token)).status_code == 200
        finally:
            feed.stop()
