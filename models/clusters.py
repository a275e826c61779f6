"""Reading clusters and their nodes. Every statement here runs inside the caller's transaction."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from itertools import groupby
from operator import itemgetter
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from models.driver_statements import codec, fetch
from models.records import ClusterRecord, NodeRecord, Rows
from models.tables import clusters, nodes

_CLUSTER_ID = itemgetter(1)

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
NODE_COLUMNS = (
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
assert [c.name for c in CLUSTER_COLUMNS] == list(ClusterRecord._fields)  # the rows' order
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
) -> Mapping[int, Sequence[NodeRecord]]:
    """Nodes of many clusters in one statement, each cluster's in id order.

    `statuses` keeps only nodes in those states; `first` keeps each cluster's first `first`
    nodes (after the status filter).
    """
    if statuses is None and first is None:
        fast = await _all_nodes_by_driver(conn, cluster_ids)
        if fast is not None:
            return fast
    conditions = [nodes.c.cluster_id.in_(list(cluster_ids))]
    if statuses is not None:
        conditions.append(nodes.c.status.in_(list(statuses)))
    if first is None:
        query = select(*NODE_COLUMNS).where(*conditions)
        ordered = query.order_by(nodes.c.cluster_id, nodes.c.id)
    else:
        rank = (
            func.row_number()
            .over(partition_by=nodes.c.cluster_id, order_by=nodes.c.id)
            .label("rank")
        )
        ranked = select(*NODE_COLUMNS, rank).where(*conditions).subquery()
        ordered = (
            select(*(ranked.c[c.name] for c in NODE_COLUMNS))
            .where(ranked.c.rank <= first)
            .order_by(ranked.c.cluster_id, ranked.c.id)
        )
    by_cluster: dict[int, list[NodeRecord]] = defaultdict(list)
    for row in await conn.execute(ordered):
        by_cluster[row[1]].append(NodeRecord._make(row))
    return by_cluster


# Every node of a page's clusters, the heaviest read of a request (2,000 rows for a page of 100
# clusters): run by the driver itself, in the caller's transaction, its rows kept as they came
# (`Rows`, made `NodeRecord`s only when read). SQLAlchemy's result machinery (a Row and type
# processors per row) costs more than the rest of the statement.
_NODE_SELECT = ", ".join(c.name for c in NODE_COLUMNS)
_ALL_NODES_SQLITE = (
    f"SELECT {_NODE_SELECT} FROM nodes WHERE cluster_id IN (SELECT value FROM json_each(?)) "
    "ORDER BY cluster_id, id"
)
_ALL_NODES_POSTGRESQL = (
    f"SELECT {_NODE_SELECT} FROM nodes WHERE cluster_id = ANY($1::bigint[]) ORDER BY cluster_id, id"
)


async def _all_nodes_by_driver(
    conn: AsyncConnection, cluster_ids: Collection[int]
) -> dict[int, Rows[NodeRecord]] | None:
    """`nodes_of` without filters through the driver (`models.driver_statements`), or None."""
    dialect = conn.dialect.name
    ids = sorted(cluster_ids)
    if dialect == "sqlite":
        rows = await fetch(conn, _ALL_NODES_SQLITE, ("[" + ",".join(map(str, ids)) + "]",))
    else:
        rows = await fetch(conn, _ALL_NODES_POSTGRESQL, (ids,))
    return None if rows is None else _node_rows(rows, dialect)


# Timestamps repeat (every node a report registered shares its `monitored_at`): each distinct
# stored value is converted once and kept, and equal values are then one object.
ROW_CODECS = {
    dialect: codec(
        dialect,
        NodeRecord._make,
        NODE_COLUMNS,
        ("monitored_at", "sensor_last_updated"),
        {"sensor_installed": bool} if dialect == "sqlite" else None,
    )
    for dialect in ("sqlite", "postgresql")
}
assert [c.name for c in NODE_COLUMNS] == list(NodeRecord._fields)  # the rows' order


def _node_rows(rows: list[Any], dialect: str) -> dict[int, Rows[NodeRecord]]:
    """Driver rows (in cluster order) as each cluster's nodes."""
    codec = ROW_CODECS[dialect]
    return {key: Rows(list(group), codec) for key, group in groupby(rows, _CLUSTER_ID)}


async def live_by_id(
    conn: AsyncConnection, cluster_ids: Collection[int]
) -> dict[int, ClusterRecord]:
    """The live clusters among `cluster_ids`, by id, in one statement."""
    query = select(*CLUSTER_COLUMNS).where(_live, clusters.c.id.in_(list(cluster_ids)))
    return {row[0]: ClusterRecord._make(row) for row in await conn.execute(query)}
