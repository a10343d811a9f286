"""SCIM 2.0 provisioning (RFC 7643, RFC 7644) of an identity domain's users and groups.

The protocol (parsing, filters, PATCH, ETags, errors) is scim2-server's and scim2-models';
what is Tessera's is here: the documents of users and groups (`documents`), the writes by the
administration rules (`users`, `groups`), the storage the server calls (`storage`) and what the
service announces (`provider`). The HTTP side is `tessera.web.scim`.
"""
