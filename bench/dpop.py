"""What DPoP (RFC 9449) costs `tessera.resource` per request, in process: a request through the
ASGI middleware with a DPoP-bound token whose validation is cached and a fresh ES256 proof
(`htm`, `htu`, `iat`, `ath`, the signature, `cnf.jkt`, the `jti` in the in-memory replay cache),
minus the same request to the bare app. The issue's target: at most 150 µs.

The token is signed here by an in-process issuer key (its validation is cached, so where it came
from costs nothing per request). Proofs are signed before the clock starts: signing is the
client's cost, not the resource's.

    python -m bench.dpop
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc import jws, jwt
from joserfc.jwk import ECKey

from tessera.shared.dpop import access_token_hash, verify_proof

__all__ = ["dpop_cost_us"]

ISSUER = "https://bench.tessera.test"
AUDIENCE = "https://api.bench.tessera.test"
URL = "http://127.0.0.1/hello"


class _Jwks:
    def __init__(self, key: ECKey) -> None:
        self._key = key

    def get(self, kid: str) -> ECKey | None:
        return self._key if kid == self._key.kid else None


def _proofs(key: ECKey, token: str, count: int) -> list[str]:
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": key.as_dict(private=False)}
    ath, now = access_token_hash(token), int(time.time())
    out = []
    for _ in range(count):
        claims = {"jti": uuid.uuid4().hex, "htm": "GET", "htu": URL, "iat": now, "ath": ath}
        out.append(jws.serialize_compact(header, json.dumps(claims).encode(), key, ["ES256"]))
    return out


def dpop_cost_us(rounds: int = 3000) -> tuple[float, float, float]:
    """(µs the middleware adds per DPoP request with a cached token, µs of `verify_proof`
    alone, µs of the bare ES256 verification inside it: the floor), CPU time of this process."""
    from tessera.resource import TokenValidator
    from tessera.resource.asgi import BearerAuthMiddleware

    issuer_key = ECKey.generate_key("P-256", parameters={"kid": "bench"})
    client_key = ECKey.generate_key("P-256")
    now = int(time.time())
    claims = {
        "iss": ISSUER, "aud": AUDIENCE, "sub": "bench", "client_id": "bench", "iat": now,
        "exp": now + 3600, "jti": uuid.uuid4().hex, "cnf": {"jkt": client_key.thumbprint()},
    }  # fmt: skip
    token = jwt.encode({"alg": "ES256", "kid": "bench", "typ": "at+jwt"}, claims, issuer_key)
    validator = TokenValidator(ISSUER, AUDIENCE, jwks=_Jwks(issuer_key))  # type: ignore[arg-type]
    validator.validate_token(token)  # cached from now on
    proofs = _proofs(client_key, token, rounds)
    protected = BearerAuthMiddleware(_app, validator)
    per_request = asyncio.run(_middleware_cost_us(protected, token, proofs))
    spare = _proofs(client_key, token, rounds)
    start = time.process_time()
    for proof in spare:
        verify_proof(proof, method="GET", url=URL, access_token=token)
    alone = (time.process_time() - start) / rounds * 1e6
    return per_request, alone, _ecdsa_us(client_key, rounds)


def _ecdsa_us(key: ECKey, rounds: int) -> float:
    private = key.private_key
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    data = b"x" * 400  # about a proof's signing input
    signature, public = private.sign(data, ec.ECDSA(hashes.SHA256())), private.public_key()
    start = time.process_time()
    for _ in range(rounds):
        public.verify(signature, data, ec.ECDSA(hashes.SHA256()))
    return (time.process_time() - start) / rounds * 1e6


async def _app(scope: Any, receive: Any, send: Any) -> None:
    return None


async def _middleware_cost_us(protected: Any, token: str, proofs: list[str]) -> float:
    """Per request: through the middleware minus the bare app, each with its own proof."""
    costs = []
    for target in (_app, protected):
        start = time.process_time()
        for proof in proofs:
            scope = {
                "type": "http", "method": "GET", "scheme": "http", "path": "/hello",
                "raw_path": b"/hello", "query_string": b"",
                "headers": [
                    (b"host", b"127.0.0.1"), (b"accept", b"*/*"),
                    (b"authorization", f"DPoP {token}".encode()), (b"dpop", proof.encode()),
                ],
            }  # fmt: skip
            await target(scope, None, None)
        costs.append((time.process_time() - start) / len(proofs) * 1e6)
    return costs[1] - costs[0]


if __name__ == "__main__":
    request_us, verify_us, ecdsa_us = dpop_cost_us()
    print(f"resource library DPoP µs per request, cached token, ES256 proof: {request_us:.1f}")
    print(f"of which verify_proof alone: {verify_us:.1f}, the ES256 verification: {ecdsa_us:.1f}")
