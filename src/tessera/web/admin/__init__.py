"""The admin REST API under `/admin/v1/` (FastAPI, with its OpenAPI description).

Every route needs a bearer token for the admin audience with the `urn:tessera:admin` scope,
validated by our own resource-server library (`tessera.resource`); only administrators can
obtain that scope. Every change goes through `tessera.manage`, which audits it with the
administrator as the actor. Every error is an RFC 9457 problem (`tessera.web.problems`).

The handlers are module-level functions, one module per subject; the per-application objects
(`Services`, the token check) come from `request.app.state` (`tessera.web.admin.deps`).
"""

from tessera.web.admin.api import AuthenticateFirst, build_admin_api

__all__ = ["AuthenticateFirst", "build_admin_api"]
