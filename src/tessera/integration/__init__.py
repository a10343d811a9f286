"""`tessera.integration`: the integration service, a resource server of the identity domain.

It plays the seed's Oracle Integration: its management REST API and the REST endpoints of its
integrations accept only access tokens (`Authorization: Bearer <token>`), every request
authorised by `tessera.resource`. It imports nothing of the identity domain's server.

    TESSERA_INTEGRATION_ISSUER=http://127.0.0.1:8000 \\
    TESSERA_INTEGRATION_CLIENT_ID=… TESSERA_INTEGRATION_CLIENT_SECRET=… \\
    tessera integration serve --port 8001

Configuration (`TESSERA_INTEGRATION_…`, see `settings`): `ISSUER` (required), `AUDIENCE`
(default `https://integration.tessera.test`), `DATABASE_URL` (default the SQLite file
`./var/integration.db`; `postgresql://…` uses psycopg 3), `CLIENT_ID` and `CLIENT_SECRET` (or
`…_FILE`) of a confidential app to follow revocations, `REVOCATION` = feed | introspection | none,
`REVOCATION_WAIT` (seconds a long poll of the feed waits, default 20).

Scopes (register them on the service's resource; a token needs any one listed):

| scope | allows |
|---|---|
| `urn:opc:resource:consumer::all` | reading and running (the seed's single instance scope) |
| `urn:tessera:integration:manage` | management writes |
| `urn:tessera:integration:monitor` | read only: `GET integrations…` and `GET monitoring/…` |
| `urn:tessera:integration:run` | running any activated integration (`…/flows/rest/…`) |
| a trigger's own `scope` | running that one integration |

Management writes (`POST`/`PUT`/`DELETE integrations…`, `…/activate`, `…/deactivate`) need
`…:manage`. A token with none of the scopes a request accepts gets 403 `insufficient_scope`.

The parts: `document` (integration documents), `expressions` and `paths` (JMESPath templates and
path templates), `runner` (the steps), `outbound` (`invoke` connections and their auth), `store`,
`schema`, `database` and `migrations` (SQLAlchemy Core, Alembic with its own version table),
`auth` (token guards), `api` and `flows` (routes), `app` (`create_app`, the ASGI factory), `cli`.
Nothing is imported here, so that the `tessera` command starts without what it does not run.
"""
