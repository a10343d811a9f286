"""The integration service's scopes, as registered on its resource in the identity domain.

| scope | allows |
|---|---|
| `urn:opc:resource:consumer::all` | reading and running: the seed's instance scope |
| `urn:tessera:integration:manage` | management: create, replace, delete, (de)activate; read |
| `urn:tessera:integration:monitor` | read only: `GET integrations…` and `GET monitoring/…` |
| `urn:tessera:integration:run` | running any activated integration (`…/flows/rest/…`) |
| a trigger's own `scope` | running that one integration (when it names another scope) |

Management writes (create, replace, delete, activate, deactivate) need `…:manage`: deploying an
integration makes the service call URLs with its credentials, which an ordinary user allowed
`consumer::all` must not decide.
A token carries the bare scope (`scope` claim); clients ask for it in Oracle's form
`<audience>:443<scope>` or as `scope=<scope>&resource=<audience>` (RFC 8707).
"""

from __future__ import annotations

__all__ = [
    "ANY_READ",
    "ANY_RUN",
    "SCOPE_ALL",
    "SCOPE_MANAGE",
    "SCOPE_MONITOR",
    "SCOPE_RUN",
    "WRITE",
    "run_scopes",
]

SCOPE_ALL = "urn:opc:resource:consumer::all"
SCOPE_MONITOR = "urn:tessera:integration:monitor"
SCOPE_RUN = "urn:tessera:integration:run"
SCOPE_MANAGE = "urn:tessera:integration:manage"

# Each tuple lists alternatives: a token needs any one of them.
ANY_READ = (SCOPE_MONITOR, SCOPE_MANAGE, SCOPE_ALL)
ANY_RUN = (SCOPE_RUN, SCOPE_ALL)
WRITE = (SCOPE_MANAGE,)


def run_scopes(trigger_scope: str) -> tuple[str, ...]:
    """The scopes any one of which allows running an integration with this trigger scope."""
    return ANY_RUN if trigger_scope in ANY_RUN else (trigger_scope, *ANY_RUN)
