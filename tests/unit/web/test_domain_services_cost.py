"""What a domain costs a node (issue 14, docs/domains.md "Cost per domain"): building a domain's
services starts no thread and opens no engine or pool of its own, and the node keeps at most
`capacity` domains' services, least recently used going first."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tessera.config import load_settings
from tessera.context import Context, open_context
from tessera.store.sql import SqlStore
from tessera.web.domains import DomainServicesCache
from tessera.web.services import build_node, build_services
from tests.unit.conftest import add_domain


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[Context]:
    settings = load_settings(data_dir=tmp_path, secret_key="k" * 43)
    context = open_context(settings, migrate=True)
    yield context
    context.close()


def test_loaded_domains_share_the_nodes_threads_and_connections(ctx: Context) -> None:
    node = build_node(ctx)
    default = ctx.store.domains.get(ctx.domain_id)
    assert default is not None
    cache = DomainServicesCache(node, build_services(node, default, ctx), capacity=3)
    domains = [add_domain(ctx, f"tenant-{i}").domain for i in range(5)]
    threads = threading.active_count()

    built = [cache.get(domain) for domain in domains]
    for svc in built:  # each domain's key ring is loaded and signs with its own keys
        assert svc.ctx.keys.sign("ES256", {"iss": svc.ctx.settings.issuer})
    kids = [{k["kid"] for k in svc.ctx.keys.public_keys()} for svc in built]
    assert all(a.isdisjoint(b) for i, a in enumerate(kids) for b in kids[i + 1 :])

    assert threading.active_count() == threads
    root = ctx.store
    assert isinstance(root, SqlStore)
    for svc in built:
        store = svc.ctx.store
        assert isinstance(store, SqlStore)
        assert store.engine is root.engine  # one pool for every domain
        assert store.revocation_listeners is root.revocation_listeners
        assert svc.node is node and svc.audit._sink is node.audit  # one audit queue
    # Bounded: the three most recently used are kept, the first two were let go.
    assert len(cache) == 3
    assert [s.domain.name for s in cache.loaded()[1:]] == ["tenant-2", "tenant-3", "tenant-4"]
    assert cache.peek(domains[0]) is None
    assert cache.peek(domains[4]) is built[4]
    node.audit.close()
