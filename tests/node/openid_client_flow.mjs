// panva's openid-client (a certified OpenID Connect relying party) as an app of Tessera, driven by
// tests/e2e/test_openid_client.py one step at a time.
//
// Protocol: one JSON object per line on stdin, one JSON answer per line on stdout, in order:
//   {"op": "discover", "issuer", "client_id", "private_key_pem", "kid", "metadata", "dpop"}
//       → {"server", "jkt"}: the discovered server metadata. With `private_key_pem` the client
//         authenticates with private_key_jwt (RFC 7523 §2.2), signing ES256 with the P-256
//         PKCS #8 key; without, it is a public app (PKCE, no client authentication). http is
//         allowed (a loopback test server) and ID token signatures are checked with the
//         jwks_uri's keys. With `dpop`, every later step is sender-constrained with a new ES256
//         DPoP key (RFC 9449; FAPI 2.0 apps need it): proofs at PAR, token, userinfo and
//         resource requests; `jkt` is its RFC 7638 thumbprint (null without `dpop`).
//   {"op": "par", "params"}
//       → {"url", "state", "nonce", "code_verifier"}: PKCE S256, state and nonce made here, the
//         request pushed (RFC 9126) and the authorization URL (client_id and request_uri only).
//   {"op": "authorize", "params"} → the same, the request in the URL itself; with `dpop` it
//         carries `dpop_jkt` (RFC 9449 §10).
//   {"op": "callback", "url"}
//       → {"tokens", "claims", "userinfo"}: the authorization code grant from the callback URL,
//         which checks state, iss (RFC 9207) and the ID token (signature, alg, iss, aud,
//         nonce), then userinfo for the ID token's subject.
//   {"op": "refresh", "refresh_token", "other_key"} → {"tokens", "claims"}: with `other_key`,
//         the proof is signed by a new DPoP key, which a public app's bound refresh token must
//         refuse (RFC 9449 §5).
//   {"op": "resource", "url", "method", "access_token"} → {"status", "www_authenticate", "body"}:
//         a protected resource called with the token (with `dpop`: `Authorization: DPoP` and a
//         proof carrying `ath`, §7.1).
// Every answer is {"ok": true, ...} or {"ok": false, "error": {name, code, error,
// error_description, status, challenge, message}}: the error as openid-client reports it.
import { createInterface } from 'node:readline'
import * as client from 'openid-client'

let config
let dpop // the DPoP handle (RFC 9449) when asked for: {} options otherwise
let pending // the checks of the authorization request in flight

// openid-client signs with the algorithm of the CryptoKey: ECDSA on P-256 is ES256.
async function importPrivateKey(pem) {
  const body = pem.replace(/-----(BEGIN|END) PRIVATE KEY-----/g, '').replace(/\s+/g, '')
  const der = Buffer.from(body, 'base64')
  const params = { name: 'ECDSA', namedCurve: 'P-256' }
  return crypto.subtle.importKey('pkcs8', der, params, false, ['sign'])
}

async function newDPoPHandle() {
  return client.getDPoPHandle(config, await client.randomDPoPKeyPair('ES256'))
}

// PKCE S256, state and nonce made here; `build` turns the request into the authorization URL.
async function start(params, build) {
  const code_verifier = client.randomPKCECodeVerifier()
  const state = client.randomState()
  const nonce = client.randomNonce()
  const url = await build({
    ...params,
    code_challenge: await client.calculatePKCECodeChallenge(code_verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  })
  pending = { code_verifier, state, nonce }
  return { url: url.href, ...pending }
}

const steps = {
  async discover({ issuer, client_id, private_key_pem, kid, metadata = {}, dpop: useDPoP }) {
    const auth = private_key_pem
      ? client.PrivateKeyJwt({ key: await importPrivateKey(private_key_pem), kid })
      : client.None()
    config = await client.discovery(
      new URL(issuer),
      client_id,
      private_key_pem ? metadata : { token_endpoint_auth_method: 'none', ...metadata },
      auth,
      // http: a loopback test server; non-repudiation: verify ID token signatures with the
      // discovered jwks_uri too (TLS alone would vouch for them in production).
      { execute: [client.allowInsecureRequests, client.enableNonRepudiationChecks] },
    )
    dpop = useDPoP ? { DPoP: await newDPoPHandle() } : {}
    const jkt = dpop.DPoP ? await dpop.DPoP.calculateThumbprint() : null
    return { server: config.serverMetadata(), jkt }
  },

  async par({ params }) {
    return start(params, (request) => client.buildAuthorizationUrlWithPAR(config, request, dpop))
  },

  async authorize({ params }) {
    return start(params, async (request) =>
      client.buildAuthorizationUrl(
        config,
        dpop.DPoP ? { ...request, dpop_jkt: await dpop.DPoP.calculateThumbprint() } : request,
      ),
    )
  },

  async callback({ url }) {
    const tokens = await client.authorizationCodeGrant(config, new URL(url), {
      pkceCodeVerifier: pending.code_verifier,
      expectedState: pending.state,
      expectedNonce: pending.nonce,
      idTokenExpected: true,
    }, undefined, dpop)
    const claims = tokens.claims()
    const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub, dpop)
    return { tokens: { ...tokens }, claims, userinfo }
  },

  async refresh({ refresh_token, other_key = false }) {
    const options = other_key ? { DPoP: await newDPoPHandle() } : dpop
    const tokens = await client.refreshTokenGrant(config, refresh_token, undefined, options)
    return { tokens: { ...tokens }, claims: tokens.claims() ?? null }
  },

  async resource({ url, method = 'GET', access_token }) {
    const response = await client.fetchProtectedResource(
      config,
      access_token,
      new URL(url),
      method,
      undefined,
      undefined,
      dpop,
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

// The OAuth error whichever way openid-client surfaces it: a JSON error body (ResponseBodyError),
// or a 401 with a WWW-Authenticate challenge (WWWAuthenticateChallengeError, thrown before the
// body is read: the error code is then in the challenge's parameters or the unread JSON body).
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
