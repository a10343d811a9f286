"""The admin REST API under `<issuer>/admin/v1/` (FastAPI, with its OpenAPI description).

One application serves every identity domain: the domain router gives each request its
domain's `Services`. Every route needs a bearer token of that domain's administrators (its
issuer, its admin audience, the `urn:tessera:admin` scope) or of an operator (a default-domain
token with the `urn:tessera:operator` scope), validated by our own resource-server library
(`tessera.resource`; `tessera.web.admin.guard`). Only administrators can obtain those scopes.
Every change goes through `tessera.manage`, which audits it in the request's domain with the
administrator, or `operator:<sub>`, as the actor. The default domain's API also manages the
identity domains (`/domains`, operators only). Every error is an RFC 9457 problem
(`tessera.web.problems`).

The handlers are module-level functions, one module per subject; the per-request objects
(`Services`, the caller) come from `tessera.web.admin.deps`.
"""

from tessera.web.admin.api import AuthenticateFirst, build_admin_api

__all__ = ["AuthenticateFirst", "build_admin_api"]
