"""What the SCIM service provider announces and serves (RFC 7643 §5, §6, §7).

Users with the enterprise extension and Groups, the schemas of RFC 7643 §8.7; PATCH, filters,
sorting, ETags and password changes are supported, bulk operations are not (a request to
`/Bulk` answers 501), and the authentication scheme is an OAuth bearer token of the domain.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from scim2_models import (
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    ETag,
    External,
    Filter,
    Patch,
    Reference,
    Resource,
    ScimProvider,
    ServiceProviderConfig,
    Sort,
)
from scim2_server.service import ScimService
from scim2_server.utils import load_default_resource_types, load_default_schemas

__all__ = ["MAX_RESULTS", "scim_models", "scim_service"]

# The largest page a search returns (RFC 7644 §3.4.2.4: the server may return fewer).
MAX_RESULTS = 200

BEARER = AuthenticationScheme(
    type=AuthenticationScheme.Type.oauthbearertoken,
    name="OAuth Bearer Token",
    description=(
        "An access token of the identity domain for its admin API: an administrator's, or a "
        "provisioning app's client-credentials token with the SCIM scope urn:tessera:scim"
    ),
    spec_uri=Reference[External]("https://www.rfc-editor.org/rfc/rfc6750"),
    primary=True,
)


def _config() -> ServiceProviderConfig:
    return ServiceProviderConfig(
        patch=Patch(supported=True),
        bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
        filter=Filter(supported=True, max_results=MAX_RESULTS),
        change_password=ChangePassword(supported=True),
        sort=Sort(supported=True),
        etag=ETag(supported=True),
        authentication_schemes=[BEARER],
    )


@cache
def scim_service() -> ScimService:
    """The service (stateless: one per process serves every domain)."""
    provider = ScimProvider.from_discovery(
        load_default_schemas().values(),
        load_default_resource_types().values(),
        config=_config(),
    )
    return ScimService(provider)


@cache
def scim_models() -> dict[str, type[Resource[Any]]]:
    """The models of the served resource types, by name (`User`, `Group`)."""
    service = scim_service()
    return {str(rt.name): service.get_model(rt) for rt in service.provider.resource_types}
