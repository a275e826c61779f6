"""Reading clusters and their nodes. Every statement here runs inside the caller's transaction."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from models.errors import NotFound
from models.records import ClusterRecord, NodeRecord
from models.tables import clusters, nodes

_CLUSTER_COLUMNS = (
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

_COUNT_LIVE = select(func.count()).select_from(clusters).where(_live)
_PAGE = (
    select(*_CLUSTER_COLUMNS)
    .where(_live, clusters.c.id > bindparam("after_id"))
    .order_by(clusters.c.id)
    .limit(bindparam("limit"))
)
_ONE_LIVE = select(*_CLUSTER_COLUMNS).where(_live, clusters.c.id == bindparam("id"))
_ID_ASSIGNED = select(clusters.c.id).where(clusters.c.id == bindparam("id"))


async def count_live(conn: AsyncConnection) -> int:
    """How many clusters are live (tombstones excluded)."""
    return (await conn.execute(_COUNT_LIVE)).scalar_one()


async def page_after(
    conn: AsyncConnection, after_id: int | None, limit: int
) -> tuple[list[ClusterRecord], bool]:
    """Up to `limit` live clusters with ids above `after_id`, in id order, and whether more follow.

    `after_id` must have been assigned to some cluster (live or removed: a removed cluster's id
    still marks a position); an id never assigned raises `NotFound`.
    """
    if (
        after_id is not None
        and (await conn.execute(_ID_ASSIGNED, {"id": after_id})).first() is None
    ):
        raise NotFound(f"next_key {after_id} is not the id of any cluster")
    result = await conn.execute(_PAGE, {"after_id": after_id or 0, "limit": limit + 1})
    records = [ClusterRecord._make(row) for row in result]
    return records[:limit], len(records) > limit


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
