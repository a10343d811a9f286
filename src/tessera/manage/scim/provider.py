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
    Mutability,
    Patch,
    Reference,
    Resource,
    Schema,
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


def _schemas() -> list[Schema]:
    """RFC 7643 §8.7's schemas, but a group member's `display` is read-only: it is the
    member's userName, derived, not a value stored as sent."""
    schemas = list(load_default_schemas().values())
    for schema in schemas:
        if schema.id != "urn:ietf:params:scim:schemas:core:2.0:Group":
            continue
        for attribute in schema.attributes or []:
            if attribute.name == "members":
                for sub in attribute.sub_attributes or []:
                    if sub.name == "display":
                        sub.mutability = Mutability.read_only
    return schemas


@cache
def scim_service() -> ScimService:
    """The service (stateless: one per process serves every domain)."""
    provider = ScimProvider.from_discovery(
        _schemas(),
        load_default_resource_types().values(),
        config=_config(),
    )
    return ScimService(provider)


@cache
def scim_models() -> dict[str, type[Resource[Any]]]:
    """The models of the served resource types, by name (`User`, `Group`)."""
    service = scim_service()
    return {str(rt.name): service.get_model(rt) for rt in service.provider.resource_types}
