// panva's openid-client (a certified OpenID Connect relying party) with DPoP (RFC 9449) as a
// public app of Tessera, driven by tests/e2e/test_openid_client_dpop.py one step at a time.
//
// Protocol: one JSON object per line on stdin, one JSON answer per line on stdout, in order:
//   {"op": "discover", "issuer", "client_id"}
//       → {"server", "jkt"}: the discovered metadata; a new ES256 DPoP key pair and its RFC 7638
//         thumbprint. The app is public (PKCE, no client authentication); http is allowed (a
//         loopback test server) and ID token signatures are checked with the jwks_uri's keys.
//   {"op": "authorize", "params", "par"}
//       → {"url", "state", "nonce"}: with `par`, the request is pushed (RFC 9126) with a DPoP
//         proof (RFC 9449 §10.1); without, the URL carries `dpop_jkt` (§10).
//   {"op": "callback", "url"}
//       → {"tokens", "claims", "userinfo"}: the code grant with a DPoP proof (openid-client
//         retries once on `use_dpop_nonce`), then userinfo with the DPoP-bound token (§7).
//   {"op": "refresh", "refresh_token", "other_key"} → {"tokens"}: with the login's key, or
//       with a new one (`other_key`), which a public app's bound refresh token must refuse.
//   {"op": "resource", "url", "method", "access_token"} → {"status", "www_authenticate", "body"}:
//       a protected resource called with `Authorization: DPoP` and a proof carrying `ath`.
// Every answer is {"ok": true, ...} or {"ok": false, "error": {name, code, error,
// error_description, status, message}}.
import { createInterface } from 'node:readline'
import * as client from 'openid-client'

let config
let dpop // the DPoP handle: the key pair and the nonces openid-client learnt
let pending // the checks of the authorization request in flight

const steps = {
  async discover({ issuer, client_id }) {
    config = await client.discovery(
      new URL(issuer),
      client_id,
      { token_endpoint_auth_method: 'none' },
      client.None(),
      { execute: [client.allowInsecureRequests, client.enableNonRepudiationChecks] },
    )
    dpop = client.getDPoPHandle(config, await client.randomDPoPKeyPair('ES256'))
    return { server: config.serverMetadata(), jkt: await dpop.calculateThumbprint() }
  },

  async authorize({ params, par }) {
    const code_verifier = client.randomPKCECodeVerifier()
    const state = client.randomState()
    const nonce = client.randomNonce()
    const request = {
      ...params,
      code_challenge: await client.calculatePKCECodeChallenge(code_verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    }
    const url = par
      ? await client.buildAuthorizationUrlWithPAR(config, request, { DPoP: dpop })
      : client.buildAuthorizationUrl(config, {
          ...request,
          dpop_jkt: await dpop.calculateThumbprint(),
        })
    pending = { code_verifier, state, nonce }
    return { url: url.href, state, nonce }
  },

  async callback({ url }) {
    const tokens = await client.authorizationCodeGrant(
      config,
      new URL(url),
      {
        pkceCodeVerifier: pending.code_verifier,
        expectedState: pending.state,
        expectedNonce: pending.nonce,
        idTokenExpected: true,
      },
      undefined,
      { DPoP: dpop },
    )
    const claims = tokens.claims()
    const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub, {
      DPoP: dpop,
    })
    return { tokens: { ...tokens }, claims, userinfo }
  },

  async refresh({ refresh_token, other_key = false }) {
    const handle = other_key
      ? client.getDPoPHandle(config, await client.randomDPoPKeyPair('ES256'))
      : dpop
    const tokens = await client.refreshTokenGrant(config, refresh_token, undefined, {
      DPoP: handle,
    })
    return { tokens: { ...tokens } }
  },

  async resource({ url, method = 'GET', access_token }) {
    const response = await client.fetchProtectedResource(
      config,
      access_token,
      new URL(url),
      method,
      undefined,
      undefined,
      { DPoP: dpop },
    )
    const text = await response.text()
    let body = text
    try {
      body = JSON.parse(text)
    } catch {}
    return {
      status: response.status,
      www_authenticate: response.headers.get('www-authenticate'),
      body,
    }
  },
}

// The OAuth error whichever way openid-client surfaces it: a JSON error body (ResponseBodyError)
// or a WWW-Authenticate challenge (WWWAuthenticateChallengeError).
async function describe(err) {
  const challenge = Array.isArray(err.cause) ? err.cause[0] : undefined
  let body = {}
  if (err.name === 'WWWAuthenticateChallengeError' && err.response && !err.response.bodyUsed) {
    body = await err.response.json().catch(() => ({}))
  }
  return {
    name: err.name,
    code: err.code ?? null,
    error: err.error ?? challenge?.parameters?.error ?? body.error ?? null,
    error_description:
      err.error_description ??
      challenge?.parameters?.error_description ??
      body.error_description ??
      null,
    status: err.status ?? null,
    challenge: challenge ? { scheme: challenge.scheme, parameters: challenge.parameters } : null,
    message: err.message,
  }
}

for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue
  let answer
  try {
    const { op, ...args } = JSON.parse(line)
    if (!Object.hasOwn(steps, op)) throw new TypeError(`unknown op ${op}`)
    answer = { ok: true, ...(await steps[op](args)) }
  } catch (err) {
    answer = { ok: false, error: await describe(err) }
  }
  process.stdout.write(JSON.stringify(answer) + '\n')
}
