"""The wire shape of OAuth errors, for the identity domain and resource servers alike.

RFC 6749 §5.2 gives the JSON body (`error`, `error_description`), RFC 6750 §3 the bearer
challenge, RFC 9449 §7.1 the DPoP challenge, RFC 6749 §5.2 the `Basic` challenge of
`invalid_client`, and RFC 9110 §10.2.3 the `Retry-After` of a 503. Pure functions of public
values: the caller passes only what a client may see (never debug text), and no other module
formats these headers or bodies.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = [
    "BASIC_CHALLENGE",
    "bearer_challenge",
    "dpop_challenge",
    "error_body",
    "error_headers",
]

BASIC_CHALLENGE = 'Basic realm="tessera", charset="UTF-8"'

# RFC 6750 §3: error_description and scope allow %x20-21 / %x23-5B / %x5D-7E only (no `"`,
# no `\`, nothing outside printable ASCII), so such characters are replaced, not escaped.
_NOT_ALLOWED = re.compile(r"[^\x20-\x21\x23-\x5b\x5d-\x7e]")
_QUOTED_PAIR = re.compile(r'(["\\])')


def error_body(error: str, description: str = "") -> dict[str, str]:
    """RFC 6749 §5.2: `{"error": …, "error_description": …}`, the description only when set."""
    out = {"error": error}
    if description:
        out["error_description"] = description
    return out


def _attribute(value: str) -> str:
    """A value RFC 6750 §3 allows inside the quotes: `"` becomes `'`, others become `?`."""
    return _NOT_ALLOWED.sub("?", value.replace('"', "'"))


def bearer_challenge(
    realm: str,
    error: str | None = None,
    description: str = "",
    scope: str = "",
    params: Sequence[tuple[str, str]] = (),
) -> str:
    """RFC 6750 §3: the `WWW-Authenticate: Bearer …` value.

    `error` is None when the request carried no token at all: such a challenge names no error
    code and no description (§3.1). `scope` is the scope needed (with `insufficient_scope`);
    `params` further auth-params of the error (RFC 9470 §3: `acr_values`, `max_age`)."""
    parts = ['Bearer realm="{}"'.format(_QUOTED_PAIR.sub(r"\\\1", realm))]
    if error is not None:
        parts.append(f'error="{_attribute(error)}"')
        if description:
            parts.append(f'error_description="{_attribute(description)}"')
        if scope:
            parts.append(f'scope="{_attribute(scope)}"')
        parts.extend(f'{name}="{_attribute(value)}"' for name, value in params)
    return ", ".join(parts)


def dpop_challenge(
    realm: str,
    algs: Sequence[str],
    error: str | None = None,
    description: str = "",
    params: Sequence[tuple[str, str]] = (),
    scope: str = "",
) -> str:
    """RFC 9449 §7.1: the `WWW-Authenticate: DPoP …` value, with `algs` (the proof algorithms
    accepted) and, when a token or proof was refused, `error` (`invalid_token`,
    `invalid_dpop_proof`, `use_dpop_nonce`, `insufficient_scope`, …), its description and the
    `scope` needed (§7.1 lists `scope` among the scheme's auth-params)."""
    bearer = bearer_challenge(realm, error, description, scope, params)
    return "DPoP " + bearer[len("Bearer ") :] + f', algs="{_attribute(" ".join(algs))}"'


def error_headers(
    error: str | None,
    status: int,
    *,
    realm: str,
    bearer: bool,
    description: str = "",
    scope: str = "",
    retry_after: int = 1,
    params: Sequence[tuple[str, str]] = (),
    basic: bool = True,
    dpop_algs: Sequence[str] = (),
    dpop_only: bool = False,
    dpop_nonce: str | None = None,
) -> dict[str, str]:
    """The authentication headers of an error answer.

    - `invalid_client` (RFC 6749 §5.2): the `Basic` challenge, the scheme clients should use
      (unless `basic` is False: a client assertion, whose client did not use that scheme);
    - a 503 (RFC 9110 §10.2.3): `Retry-After` and no challenge: nothing is wrong with the
      credentials, and a challenge would send clients to get new ones;
    - otherwise, when `bearer` (a protected resource): the RFC 6750 §3 challenge, without an
      error code when `error` is None (no token was sent). With `dpop_algs` the resource also
      takes DPoP (RFC 9449 §7.1): a DPoP challenge (`algs` only) follows the Bearer one; with
      `dpop_only` (the request used DPoP, or a DPoP-bound token) the DPoP challenge alone
      carries the error. `dpop_nonce` is the fresh server nonce of a `use_dpop_nonce` answer
      (§9), sent as `DPoP-Nonce`.
    """
    if error == "invalid_client":
        return {"WWW-Authenticate": BASIC_CHALLENGE} if basic else {}
    if status == 503:
        return {"Retry-After": str(retry_after)}
    headers = {"DPoP-Nonce": dpop_nonce} if dpop_nonce else {}
    if bearer and dpop_algs:
        if dpop_only:
            challenge = dpop_challenge(realm, dpop_algs, error, description, params, scope)
        else:
            bearer_part = bearer_challenge(realm, error, description, scope, params)
            challenge = f"{bearer_part}, {dpop_challenge(realm, dpop_algs)}"
        return {**headers, "WWW-Authenticate": challenge}
    if bearer:
        challenge = bearer_challenge(realm, error, description, scope, params)
        return {**headers, "WWW-Authenticate": challenge}
    return headers
