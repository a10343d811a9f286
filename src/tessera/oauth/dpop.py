"""The identity domain's DPoP policy (RFC 9449): which proofs its endpoints accept, and how.

`tessera.shared.dpop` checks a proof (§4.3 checks 1-11); this module adds what the domain
owns: the algorithms it advertises (`dpop_signing_alg_values_supported`, §5.1), the `jti`
replay state shared by every node (§11.1: the database's use-once table), the optional server
nonces (§8: stateless, derived from the domain's secret, so any node accepts another's), and
the translation of a failure into the OAuth errors `invalid_dpop_proof` and `use_dpop_nonce`.

The rules that bind tokens to a proof's key live with the grants (`tessera.oauth.grants`),
the authorization request (`dpop_jkt`, §10) and the userinfo endpoint (§7).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from tessera.oauth import errors
from tessera.shared.dpop import (
    DEFAULT_ALGS,
    DPoPError,
    NonceRequired,
    NonceSource,
    Proof,
    proof_from_headers,
    replay_key,
    verify_proof,
)

__all__ = ["NONCE_KEY_PURPOSE", "DPoPPolicy", "check_jkt_param", "proof_value"]

NONCE_KEY_PURPOSE = "dpop-nonce"  # `Context.subkey`: the same secret on every node
# RFC 7638 SHA-256 thumbprint, base64url without padding: 43 characters (§6.1, §10).
_JKT = re.compile(r"[A-Za-z0-9_-]{43}")


def proof_value(values: list[str], *, status: int = 400) -> str | None:
    """§4.3 check 1: the request's one `DPoP` header, None without one."""
    try:
        return proof_from_headers(values)
    except DPoPError as exc:
        raise errors.InvalidDPoPProof(exc.description, status=status) from None


def check_jkt_param(value: str | None) -> str | None:
    """§10: `dpop_jkt` is a JWK SHA-256 thumbprint; anything else is `invalid_request`."""
    if value is not None and not _JKT.fullmatch(value):
        raise errors.InvalidRequest("dpop_jkt is not a JWK SHA-256 thumbprint (RFC 9449 §10)")
    return value


@dataclass(frozen=True, slots=True)
class DPoPPolicy:
    """How one identity domain checks proofs. `use_once` is `NonceStore.use_once`; `nonces`
    is set when server nonces are on (`TESSERA_DPOP_NONCE`)."""

    use_once: Callable[[str, datetime, datetime], bool]
    nonces: NonceSource | None = None
    algorithms: tuple[str, ...] = DEFAULT_ALGS
    max_age: int = 60
    leeway: int = 5

    def fresh_nonce(self, now: datetime) -> str | None:
        """§8.2: the nonce to hand out with an answer (None while nonces are off)."""
        return None if self.nonces is None else self.nonces.current(now.timestamp())

    def verify(
        self,
        proof: str,
        *,
        method: str,
        url: str,
        now: datetime,
        access_token: str | None = None,
        status: int = 400,
    ) -> Proof:
        """§4.3 checks 2-11 (`ath` when `access_token` is given; the nonce when nonces are on).
        No I/O: `use` records the `jti` afterwards. `status`: 400 at the token endpoint (§5,
        §8), 401 at a protected resource (§7.1, §9)."""
        try:
            return verify_proof(
                proof,
                method=method,
                url=url,
                now=now.timestamp(),
                algorithms=self.algorithms,
                max_age=self.max_age,
                leeway=self.leeway,
                access_token=access_token,
                nonces=self.nonces,
            )
        except NonceRequired as exc:
            nonce = self.fresh_nonce(now)
            assert nonce is not None  # only raised when nonces are on
            raise errors.UseDPoPNonce(exc.description, nonce, status=status) from None
        except DPoPError as exc:
            refused = errors.InvalidDPoPProof(exc.description, status=status)
            refused.dpop_nonce = self.fresh_nonce(now)  # §8: a rejection MAY carry one
            raise refused from None

    def use(self, proof: Proof, now: datetime, *, status: int = 400) -> None:
        """§11.1: a proof is accepted once, on any node (the database's use-once table), for
        as long as its `iat` is accepted; a second use is `invalid_dpop_proof`."""
        expires_at = datetime.fromtimestamp(proof.iat + self.max_age + self.leeway, UTC)
        if not self.use_once(replay_key(proof.jkt, proof.jti), expires_at, now):
            raise errors.InvalidDPoPProof("the DPoP proof was used before", status=status)
