"""Reading clusters and their nodes. Every statement here runs inside the caller's transaction."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from models.records import ClusterRecord, NodeRecord
from models.tables import clusters, nodes

CLUSTER_COLUMNS = (
    clusters.c.id,
    clusters.c.name,
    clusters.c.monitored_at,
    clusters.c.controller_version,
    clusters.c.controller_status,
    clusters.c.controller_last_updated,
    clusters.c.provider,
    clusters.c.regions,
    clusters.c.nodes_count,
    clusters.c.running_nodes_count,
    clusters.c.failed_nodes_count,
    clusters.c.failed_to_install_nodes_count,
    clusters.c.disabled_nodes_count,
)
_NODE_COLUMNS = (
    nodes.c.id,
    nodes.c.cluster_id,
    nodes.c.monitored_at,
    nodes.c.name,
    nodes.c.sensor_installed,
    nodes.c.sensor_last_updated,
    nodes.c.sensor_version,
    nodes.c.region,
    nodes.c.architecture,
    nodes.c.hostname,
    nodes.c.internal_dns,
    nodes.c.internal_ip,
    nodes.c.status,
)
_live = clusters.c.removed_at.is_(None)
_ONE_LIVE = select(*CLUSTER_COLUMNS).where(_live, clusters.c.id == bindparam("id"))
_ID_ASSIGNED = select(clusters.c.id).where(clusters.c.id == bindparam("id"))


async def id_assigned(conn: AsyncConnection, cluster_id: int) -> bool:
    """Whether `cluster_id` was ever given to a cluster (live or removed: ids are never reused)."""
    return (await conn.execute(_ID_ASSIGNED, {"id": cluster_id})).first() is not None


async def get_live(conn: AsyncConnection, cluster_id: int) -> ClusterRecord | None:
    """The live cluster with this id, or None (never assigned, or removed)."""
    row = (await conn.execute(_ONE_LIVE, {"id": cluster_id})).first()
    return None if row is None else ClusterRecord._make(row)


async def nodes_of(
    conn: AsyncConnection,
    cluster_ids: Collection[int],
    statuses: Sequence[str] | None = None,
    first: int | None = None,
) -> dict[int, list[NodeRecord]]:
    """Nodes of many clusters in one statement, each cluster's in id order.

    `statuses` keeps only nodes in those states; `first` keeps each cluster's first `first`
    nodes (after the status filter).
    """
    conditions = [nodes.c.cluster_id.in_(list(cluster_ids))]
    if statuses is not None:
        conditions.append(nodes.c.status.in_(list(statuses)))
    if first is None:
        query = select(*_NODE_COLUMNS).where(*conditions)
        ordered = query.order_by(nodes.c.cluster_id, nodes.c.id)
    else:
        rank = (
            func.row_number()
            .over(partition_by=nodes.c.cluster_id, order_by=nodes.c.id)
            .label("rank")
        )
        ranked = select(*_NODE_COLUMNS, rank).where(*conditions).subquery()
        ordered = (
            select(*(ranked.c[c.name] for c in _NODE_COLUMNS))
            .where(ranked.c.rank <= first)
            .order_by(ranked.c.cluster_id, ranked.c.id)
        )
    by_cluster: dict[int, list[NodeRecord]] = defaultdict(list)
    for row in await conn.execute(ordered):
        by_cluster[row[1]].append(NodeRecord._make(row))
    return by_cluster
