"""Building and reading test data with the product's own storage functions."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from models import bindings, listing, seeding, tokens
from models.clusters import nodes_of
from models.engine import create_engine, read_transaction, write_transaction
from models.listing import ClusterFilter, Order
from models.records import ClusterRecord, ClusterState, ControllerStatus, NodeState, NodeStatus
from models.removal import remove_cluster
from models.tokens import Permission

_names = itertools.count(1)
STATUS_CYCLE = list(NodeStatus)


def node(name: str, status: NodeStatus = NodeStatus.MONITORED, **fields: object) -> NodeState:
    values: dict[str, object] = {
        "hostname": f"{name}.internal",
        "sensor_installed": status is NodeStatus.MONITORED_WITH_SENSOR,
        "region": "eu-west-1",
        "architecture": "amd64",
        "internal_dns": f"{name}.eu-west-1.compute.internal",
        "internal_ip": "10.0.0.1",
    }
    values.update(fields)
    return NodeState(name=name, status=status, **values)  # type: ignore[arg-type]


def nodes(
    count: int, prefix: str = "node", statuses: Sequence[NodeStatus] = STATUS_CYCLE
) -> list[NodeState]:
    return [node(f"{prefix}-{i}", statuses[i % len(statuses)]) for i in range(count)]


def cluster(
    name: str | None = None,
    node_count: int = 3,
    *,
    node_states: list[NodeState] | None = None,
    provider: str = "aws",
    regions: Sequence[str] = ("eu-west-1",),
    status: ControllerStatus = ControllerStatus.RUNNING,
) -> ClusterState:
    return ClusterState(
        name=name or f"cluster-{next(_names)}",
        provider=provider,
        regions=list(regions),
        controller_version="1.4.2",
        controller_status=status,
        nodes=node_states if node_states is not None else nodes(node_count),
    )


async def insert(engine: AsyncEngine, states: Sequence[ClusterState]) -> list[int]:
    async with write_transaction(engine) as conn:
        return await seeding.insert_clusters(conn, states, datetime.now(UTC))


async def token(
    engine: AsyncEngine,
    *permissions: Permission,
    name: str | None = None,
    expires_at: datetime | None = None,
    clusters: Sequence[str] | None = None,
) -> str:
    """A new token's secret; a Controller token is bound to `clusters`, by default to every
    name (`*`), as a fleet-wide token would be."""
    if clusters is None:
        clusters = ("*",) if tokens.needs_binding(permissions) else ()
    return await tokens.issue(
        engine,
        name or f"token-{next(_names)}",
        permissions,
        expires_at=expires_at,
        binding=bindings.binding(clusters),
    )


async def admin_and_controller(
    database_url: str, clusters: Sequence[ClusterState] = ()
) -> tuple[str, str]:
    """The secrets of an Admin and a Controller token written, with `clusters`, to the database at
    `database_url`: for a server that runs in another process."""
    engine = create_engine(database_url)
    try:
        admin = await token(engine, Permission.ADMIN)
        controller = await token(engine, Permission.CONTROLLER)
        if clusters:
            await insert(engine, clusters)
    finally:
        await engine.dispose()
    return admin, controller


async def remove(engine: AsyncEngine, cluster_id: int) -> None:
    async with write_transaction(engine) as conn:
        assert await remove_cluster(conn, cluster_id, datetime.now(UTC))


async def live_clusters(engine: AsyncEngine) -> tuple[list[ClusterRecord], dict[int, int]]:
    """Every live cluster and how many node rows each has."""
    async with read_transaction(engine) as conn:
        records, more = await listing.page(conn, ClusterFilter(), Order(), None, 100_000)
        assert not more
        nodes = await nodes_of(conn, [r.id for r in records])
        assert await listing.count_matching(conn, ClusterFilter()) == len(records)
    return list(records), {r.id: len(nodes.get(r.id, [])) for r in records}
