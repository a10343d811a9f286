// panva's oidc-provider (a certified OpenID Provider) as the upstream of Tessera's federation,
// started by tests/support/upstreams.py on loopback (docs/federation.md).
//
// Usage: node upstream_op.mjs '<JSON config>'
//   {
//     "port": 43123,                      // on 127.0.0.1; the issuer is http://127.0.0.1:<port>
//     "clients": [                        // oidc-provider client metadata, passed through
//       {"client_id": "tessera", "client_secret": "…", "redirect_uris": ["…/callback"]},
//       {"client_id": "tessera-pkjwt", "token_endpoint_auth_method": "private_key_jwt",
//        "jwks": {"keys": [...]} or "jwks_uri": "…/oauth2/v1/federation/<name>/jwks",
//        "redirect_uris": ["…"]}
//     ],
//     "accounts": [                       // the dev login form's "login" is the account's sub
//       {"sub": "u-1", "email": "ann@example.test", "email_verified": true, "name": "Ann",
//        "preferred_username": "ann", "groups": ["engineering"]}
//     ]
//   }
// Prints one line `{"ready": true, "issuer": …}` on stdout once it listens; every error the
// provider reports goes to stderr (the test's log).
//
// What it is configured for: the authorization code flow with PKCE required (RFC 7636, S256 —
// oidc-provider 9 supports no other method), the `iss` authorization response parameter
// (RFC 9207, on by default in oidc-provider 9), client_secret_basic/_post and private_key_jwt
// (RFC 7523 §2.2) client authentication, its development login form (`devInteractions`: any
// password; the user's consent given automatically), and the profile/email/groups claims both
// at userinfo (OIDC Core §5.3) and in the ID token (`conformIdTokenClaims: false`).
import { generateKeyPairSync, randomBytes } from 'node:crypto'

import Provider from 'oidc-provider'

const config = JSON.parse(process.argv[2] ?? '{}')
const port = Number(config.port)
if (!Number.isInteger(port) || port <= 0) {
  console.error('upstream_op.mjs: a "port" is required')
  process.exit(2)
}
const issuer = config.issuer ?? `http://127.0.0.1:${port}`
const accounts = new Map((config.accounts ?? []).map((account) => [account.sub, account]))

// The provider's own signing key: RS256, new on every start (nothing is persisted).
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
const signingKey = {
  ...privateKey.export({ format: 'jwk' }),
  kid: randomBytes(8).toString('hex'),
  use: 'sig',
  alg: 'RS256',
}

const clients = (config.clients ?? []).map((client) => ({
  grant_types: ['authorization_code'],
  response_types: ['code'],
  token_endpoint_auth_method: 'client_secret_basic',
  ...client,
}))

const provider = new Provider(issuer, {
  clients,
  jwks: { keys: [signingKey] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  features: {
    devInteractions: { enabled: true },
    userinfo: { enabled: true },
  },
  pkce: { required: () => true },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    // groups in the profile scope too: a provider asking the default scopes gets them (as
    // directories that add a groups claim to every ID token do).
    profile: ['name', 'preferred_username', 'given_name', 'family_name', 'groups'],
    groups: ['groups'],
  },
  scopes: ['openid', 'email', 'profile', 'groups'],
  conformIdTokenClaims: false,
  // Our jwks_uri (private_key_jwt) is on loopback, which oidc-provider's SSRF protection
  // refuses ("special-use IP address"): a test upstream fetches it without that dispatcher.
  fetch(url, options) {
    delete options.dispatcher
    return globalThis.fetch(url, options)
  },
  async findAccount(ctx, sub) {
    const account = accounts.get(sub)
    if (!account) return undefined
    return {
      accountId: sub,
      async claims() {
        return { ...account, sub }
      },
    }
  },
  // The user's consent given at once (a test upstream has one user and trusted clients): the
  // grant covers what the request asked for.
  async loadExistingGrant(ctx) {
    const { Grant } = ctx.oidc.provider
    const grantId =
      ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId)
    const grant = grantId
      ? await Grant.find(grantId)
      : new Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId })
    grant.addOIDCScope([...ctx.oidc.requestParamScopes].join(' '))
    grant.addOIDCClaims([...ctx.oidc.requestParamClaims])
    await grant.save()
    return grant
  },
})

for (const event of [
  'server_error',
  'authorization.error',
  'grant.error',
  'userinfo.error',
  'jwks.error',
  'discovery.error',
]) {
  provider.on(event, (...args) => {
    const err = args.find((arg) => arg instanceof Error)
    let cause = ''
    for (let c = err?.cause; c; c = c.cause) cause += ` (cause: ${c.message ?? c})`
    const detail = err
      ? `${err.name}: ${err.message} ${err.error_description ?? ''} ${err.error_detail ?? ''}${cause}`
      : ''
    console.error(`upstream_op ${event}: ${detail}`)
  })
}

const server = provider.listen(port, '127.0.0.1', () => {
  console.log(JSON.stringify({ ready: true, issuer }))
})

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close()
    process.exit(0)
  })
}
